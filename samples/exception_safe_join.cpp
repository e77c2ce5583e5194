// exception_safe_join: a job that leaves a scope by an exception while jobs it spawned still
// run gets its exception delivered; the pending jobs finish before their counter goes.
//
//   level job ──spawn──▶ risky (throws "x")            ┐
//       │     ──spawn──▶ other (long work)             │
//       └── co_await ctx.wait(risky): rethrows "x"     │
//           unwinding: ~Counter other  ── joins ──────▶┘ (the coroutine waits for `other`;
//                                                         the worker runs other jobs)
//   main ◀── js.wait(done) rethrows "x"; `other` has finished

#include <fmt/core.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <stdexcept>

int main() {
  fiberjob::JobSystem js;
  std::atomic<bool> other_finished{false};
  fiberjob::Counter done;
  js.run(done, [&](fiberjob::Context& ctx) -> fiberjob::Task<> {
    fiberjob::Counter risky, other;
    ctx.spawn(risky, [] { throw std::runtime_error("x"); });
    ctx.spawn(other, [&] {
      for (int i = 0; i < 1000; ++i) fiberjob::this_fiber::yield();  // long work
      other_finished.store(true);
    });
    co_await ctx.wait(risky);  // rethrows; `other` may still run: its counter joins it
  });
  bool delivered = false;
  try {
    js.wait(done);
  } catch (const std::runtime_error& error) {
    delivered = true;
    fmt::print("the waiter got the job's exception: {}\n", error.what());
  }
  fmt::print("the pending job finished before its counter went: {}\n",
             other_finished.load() ? "yes" : "no");
  const bool ok = delivered && other_finished.load();
  fmt::print("{}\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
