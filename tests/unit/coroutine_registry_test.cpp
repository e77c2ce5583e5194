// The registry of live coroutine jobs (Config::track_coroutine_jobs): what the gdb extension's
// `fiberjob coroutines` and write_diagnostics read.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <cstdio>
#include <thread>

#include "scheduler.hpp"
#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace fiberjob::detail {
extern const Scheduler* g_debug_schedulers[64];
extern std::uint32_t g_debug_scheduler_count;
}  // namespace fiberjob::detail

namespace {

Task<> child(Context& ctx, Counter& gate) { co_await ctx.wait(gate); }

/// The job systems' one Scheduler, found through the registry the debugger reads.
std::size_t tracked_jobs() {
  std::size_t count = 0;
  for (std::uint32_t i = 0; i < detail::g_debug_scheduler_count; ++i) {
    count += detail::live_coroutine_jobs(*detail::g_debug_schedulers[i]);
  }
  return count;
}

}  // namespace

TEST_SUITE("coroutine registry") {
  TEST_CASE("with track_coroutine_jobs, live coroutine jobs are registered until they end") {
    test::Watchdog watchdog("coroutine registry", 60s);
    Config config = test::config_with(2);
    config.track_coroutine_jobs = true;
    JobSystem js{config};
    Counter gate;
    gate.add(1);
    Counter done;
    for (int i = 0; i < 10; ++i) {
      js.run(done, [&gate](Context& ctx) -> Task<> { co_await child(ctx, gate); });
    }
    js.run(done, [](Context& ctx) -> Task<> { co_await ctx.yield(); });  // ends at once
    while (tracked_jobs() != 10) std::this_thread::yield();              // the ten waiters stay
    gate.signal();
    js.wait(done);
    CHECK(tracked_jobs() == 0);
  }

  TEST_CASE("without it nothing is registered") {
    JobSystem js{test::config_with(2)};
    Counter gate;
    gate.add(1);
    Counter done;
    js.run(done, [&gate](Context& ctx) -> Task<> { co_await ctx.wait(gate); });
    while (js.stats().coroutine_jobs_alive != 1) std::this_thread::yield();
    CHECK(tracked_jobs() == 0);
    gate.signal();
    js.wait(done);
  }
}
