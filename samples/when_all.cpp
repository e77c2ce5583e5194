// when_all: child tasks run as parallel jobs; the parent resumes when all have ended.
//
//   load_level ──co_await when_all(ctx, load_mesh, load_texture, load_sounds)──┐
//        │          ├─ job: load_mesh    ─┐                                     │ (suspended:
//        │          ├─ job: load_texture ─┼─ each may run on another worker     │  no fiber held)
//        │          └─ job: load_sounds  ─┘                                     │
//        ◀── tuple{mesh, texture, Unit} once every child has ended ◀────────────┘
//   then co_await when_all(ctx, vector of 64 chunk tasks) → vector of 64 values
//
// If a child throws, the others still run to their end; then the first exception is rethrown.

#include <fmt/core.h>
#include <fiberjob/fiberjob.hpp>

#include <numeric>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace {

fiberjob::Task<int> load_mesh() { co_return 1200; }               // triangles
fiberjob::Task<std::string> load_texture() { co_return "rock"; }  // a name
fiberjob::Task<void> load_sounds() { co_return; }                 // nothing to return
fiberjob::Task<long> chunk_sum(long first, long count) {
  long sum = 0;
  for (long i = first; i < first + count; ++i) sum += i;
  co_return sum;
}
fiberjob::Task<int> corrupt_file() {
  throw std::runtime_error("texture.dds is corrupt");
  co_return 0;
}

fiberjob::Task<bool> load_level(fiberjob::Context& ctx) {
  // 1. Three different children, in parallel; Task<void> yields fiberjob::Unit.
  auto [triangles, texture, sounds] =
      co_await fiberjob::when_all(ctx, load_mesh(), load_texture(), load_sounds());
  fmt::print("when_all: mesh {} triangles, texture '{}', sounds loaded\n", triangles, texture);
  (void)sounds;
  // 2. Any number of children of one type.
  std::vector<fiberjob::Task<long>> chunks;
  for (long c = 0; c < 64; ++c) chunks.push_back(chunk_sum(c * 1000, 1000));
  const std::vector<long> sums = co_await fiberjob::when_all(ctx, std::move(chunks));
  const long total = std::accumulate(sums.begin(), sums.end(), 0L);
  fmt::print("when_all over 64 chunks: sum = {}\n", total);
  // 3. A failing child: the other child still ends, then the exception arrives here.
  bool rethrown = false;
  try {
    (void)co_await fiberjob::when_all(ctx, load_mesh(), corrupt_file());
  } catch (const std::runtime_error& error) {
    rethrown = true;
    fmt::print("when_all rethrew: {}\n", error.what());
  }
  co_return triangles == 1200 && total == 63999 * 32000 && rethrown;
}

}  // namespace

int main() {
  fiberjob::JobSystem js;
  const bool ok = fiberjob::sync_wait(js, load_level(js.context()));
  fmt::print("{}\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
