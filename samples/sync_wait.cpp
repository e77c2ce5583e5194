// sync_wait: the main thread runs a coroutine on the job system and gets its value.
//
//   main ──sync_wait(js, total_cost(...))──▶ wrapper job ──co_await──▶ total_cost (a Task<long>)
//     (parks)                                                 │ co_await cost(i) (child tasks)
//   main ◀── the value (or the task's exception, rethrown) ◀──┘
//
// A Task<T> is lazy: sync_wait starts it as a job, parks the calling thread until it has
// finished, and hands back its value.

#include <fmt/core.h>
#include <fiberjob/fiberjob.hpp>

#include <stdexcept>

namespace {

fiberjob::Task<long> cost(int level) { co_return static_cast<long>(level) * level; }

// A coroutine that awaits child tasks one after the other (symmetric transfer, no queueing).
fiberjob::Task<long> total_cost(int levels) {
  long total = 0;
  for (int level = 1; level <= levels; ++level) total += co_await cost(level);
  co_return total;
}

fiberjob::Task<int> broken() {
  throw std::runtime_error("the level file is missing");
  co_return 0;
}

}  // namespace

int main() {
  fiberjob::JobSystem js;
  // 1. A value out of the job system, on the main thread.
  const long total = fiberjob::sync_wait(js, total_cost(100));
  fmt::print("sync_wait: total cost of 100 levels = {}\n", total);
  // 2. A task's exception comes back to the caller.
  bool rethrown = false;
  try {
    (void)fiberjob::sync_wait(js, broken());
  } catch (const std::runtime_error& error) {
    rethrown = true;
    fmt::print("sync_wait rethrew: {}\n", error.what());
  }
  const bool ok = total == 338350 && rethrown;
  fmt::print("{}\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
