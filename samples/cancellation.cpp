// cancellation: jobs spawned with a std::stop_token stop at their next wait or yield.
//
//   main ──run(done, patrol, source.get_token())×4──▶ patrol jobs (loop: step, co_await yield)
//   main ──source.request_stop()──▶ each patrol's next co_await ctx.yield() completes with
//                                   Error(Cancelled): the coroutine unwinds, destructors run,
//                                   `done` is signalled
//   main ◀── js.wait(done) rethrows the Cancelled error; every patrol has ended
//   a long computation polls ctx.stop_token() instead (it neither waits nor yields)

#include <fmt/core.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <stop_token>
#include <thread>

int main() {
  fiberjob::JobSystem js;
  std::stop_source source;
  std::atomic<int> running{0};
  std::atomic<int> steps{0};
  fiberjob::Counter done;
  // 1. Coroutine jobs that loop until they are stopped.
  for (int i = 0; i < 4; ++i) {
    js.run(
        done,
        [&](fiberjob::Context& ctx) -> fiberjob::Task<> {
          struct Running {  // destroyed when the job unwinds
            std::atomic<int>& n;
            explicit Running(std::atomic<int>& r) : n(r) { n.fetch_add(1); }
            ~Running() { n.fetch_sub(1); }
          } running_guard(running);
          for (;;) {
            steps.fetch_add(1);
            co_await ctx.yield();  // Error(Cancelled) once a stop is requested
          }
        },
        source.get_token());
  }
  // 2. A plain job that polls its token in a loop that never waits.
  js.run(
      done,
      [&](fiberjob::Context& ctx) {
        while (!ctx.stop_token().stop_requested()) std::this_thread::yield();
      },
      source.get_token());
  while (steps.load() < 100) std::this_thread::yield();
  // 3. Stop them all.
  source.request_stop();
  bool cancelled = false;
  try {
    js.wait(done);
  } catch (const fiberjob::Error& error) {
    cancelled = error.code() == fiberjob::ErrorCode::Cancelled;
    fmt::print("the jobs were cancelled: {}\n", error.what());
  }
  fmt::print("jobs still running: {}\n", running.load());
  const bool ok = cancelled && running.load() == 0;
  fmt::print("{}\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
