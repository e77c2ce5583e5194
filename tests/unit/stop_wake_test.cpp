// A stop requested while a job's wait is suspended wakes it: counter waits (coroutine, plain
// at call depth, JobSystem::wait, value waits), sleeps and timed waits complete with Cancelled
// although the counter never reaches zero and the deadline is an hour away. A hang here is a
// wait the stop did not wake: the watchdog turns it into a failure.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <chrono>
#include <stop_token>
#include <string>
#include <thread>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t kSweep[] = {1, 2, 4};

/// What the jobs of one case report.
struct Probe {
  std::atomic<int> alive{0};      // live Guards: a cancelled job's destructors ran when 0
  std::atomic<int> waiting{0};    // jobs about to wait
  std::atomic<int> cancelled{0};  // waits that threw Cancelled
  std::atomic<int> returned{0};   // waits that returned (must not happen here)
};

/// A local whose destructor must run when its job unwinds; heap-allocated payload so that a
/// leak shows under ASan.
struct Guard {
  Probe& probe;
  std::string payload = std::string(64, 'x');
  explicit Guard(Probe& p) : probe(p) { probe.alive.fetch_add(1); }
  ~Guard() { probe.alive.fetch_sub(1); }
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;
};

/// Runs `wait()` as the job's wait, counting how it ended; rethrows (the job's counter gets
/// the Cancelled error).
template <class Wait>
void counted(Probe& probe, Wait&& wait) {
  try {
    probe.waiting.fetch_add(1);
    wait();
    probe.returned.fetch_add(1);
  } catch (const Error& error) {
    if (error.code() == ErrorCode::Cancelled) probe.cancelled.fetch_add(1);
    throw;
  }
}

/// The plain job's wait, `depth` calls down.
void wait_at_depth(Probe& probe, Counter& never, int depth) {
  const Guard guard(probe);
  if (depth > 0) {
    wait_at_depth(probe, never, depth - 1);
    return;
  }
  counted(probe, [&] { this_fiber::wait(never); });
}

/// The coroutine form of `counted`, with a Guard: awaits `wait(ctx)` (its value dropped).
template <class Wait>
Task<> co_counted(Context& ctx, Probe& probe, Wait wait) {
  const Guard guard(probe);
  probe.waiting.fetch_add(1);
  try {
    (void)co_await wait(ctx);
    probe.returned.fetch_add(1);
  } catch (const Error& error) {
    if (error.code() == ErrorCode::Cancelled) probe.cancelled.fetch_add(1);
    throw;
  }
}

Task<> co_wait_inner(Context& ctx, Probe& probe, Counter& never) {
  return co_counted(ctx, probe, [&never](Context& context) { return context.wait(never); });
}

/// The coroutine job's wait, one Task down.
Task<> co_wait_nested(Context& ctx, Probe& probe, Counter& never) {
  const Guard guard(probe);
  co_await co_wait_inner(ctx, probe, never);
}

/// Calls `spawn(js, done, token, probe, never)` `rounds` times, each spawning `per_round` jobs
/// with `token`; lets them suspend, then
/// requests their stop from this thread: every wait must throw Cancelled, every job unwind,
/// and `done` reach zero, although `never` stays above zero.
template <class Spawn>
void stop_while_suspended(std::uint32_t workers, int rounds, int per_round, Spawn spawn) {
  CAPTURE(workers);
  const int jobs = rounds * per_round;
  JobSystem js{test::config_with(workers)};
  std::stop_source source;
  Probe probe;
  Counter never;
  never.add(2);  // above zero and above the value waits' target 1
  Counter done;
  for (int i = 0; i < rounds; ++i) spawn(js, done, source.get_token(), probe, never);
  while (probe.waiting.load() < jobs) std::this_thread::yield();
  // Give the waits time to suspend; one that has not yet throws at its own stop check, so
  // the outcome is the same, but only a suspended one hangs without the wake.
  std::this_thread::sleep_for(20ms);
  source.request_stop();
  try {
    js.wait(done);
    FAIL("the stopped jobs' Cancelled error was not rethrown");
  } catch (const Error& error) {
    CHECK(error.code() == ErrorCode::Cancelled);
  }
  CHECK(done.done());
  CHECK(probe.cancelled.load() == jobs);
  CHECK(probe.returned.load() == 0);
  CHECK(probe.alive.load() == 0);
  never.signal();
  never.signal();
}

}  // namespace

TEST_SUITE("stop wakes suspended waits") {
  TEST_CASE("counter waits: coroutine, plain job at call depth, JobSystem::wait, value waits") {
    test::Watchdog watchdog("stop wakes counter waits", 120s);
    for (std::uint32_t workers : kSweep) {
      stop_while_suspended(
          workers, 4, 1,
          [](JobSystem& js, Counter& done, std::stop_token token, Probe& probe, Counter& never) {
            js.run(
                done, [&](Context& ctx) { return co_wait_nested(ctx, probe, never); }, token);
          });
      stop_while_suspended(
          workers, 4, 1,
          [](JobSystem& js, Counter& done, std::stop_token token, Probe& probe, Counter& never) {
            js.run(
                done, [&] { wait_at_depth(probe, never, 5); }, token);
          });
      stop_while_suspended(
          workers, 2, 1,
          [](JobSystem& js, Counter& done, std::stop_token token, Probe& probe, Counter& never) {
            js.run(
                done,
                [&] {
                  const Guard guard(probe);
                  counted(probe, [&] { js.wait(never); });
                },
                token);
          });
      stop_while_suspended(
          workers, 2, 2,
          [](JobSystem& js, Counter& done, std::stop_token token, Probe& probe, Counter& never) {
            js.run(
                done,
                [&] {
                  const Guard guard(probe);
                  counted(probe, [&] { this_fiber::wait(never, 1); });
                },
                token);
            js.run(
                done,
                [&](Context& ctx) {
                  return co_counted(ctx, probe,
                                    [&never](Context& context) { return context.wait(never, 1); });
                },
                token);
          });
    }
  }

  TEST_CASE("sleeps: co_await ctx.sleep_for and this_fiber::sleep_for of an hour") {
    test::Watchdog watchdog("stop wakes sleeps", 120s);
    for (std::uint32_t workers : kSweep) {
      stop_while_suspended(
          workers, 3, 2,
          [](JobSystem& js, Counter& done, std::stop_token token, Probe& probe, Counter&) {
            js.run(
                done,
                [&](Context& ctx) {
                  return co_counted(ctx, probe,
                                    [](Context& context) { return context.sleep_for(1h); });
                },
                token);
            js.run(
                done,
                [&] {
                  const Guard guard(probe);
                  counted(probe, [] { this_fiber::sleep_until(TimerClock::now() + 1h); });
                },
                token);
          });
    }
  }

  TEST_CASE("timed waits on a Counter and an Event, both forms, with an hour's timeout") {
    test::Watchdog watchdog("stop wakes timed waits", 120s);
    for (std::uint32_t workers : kSweep) {
      Event event;  // never set
      stop_while_suspended(workers, 2, 4,
                           [&event](JobSystem& js, Counter& done, std::stop_token token,
                                    Probe& probe, Counter& never) {
                             js.run(
                                 done,
                                 [&](Context& ctx) {
                                   return co_counted(ctx, probe, [&never](Context& context) {
                                     return context.wait_for(never, 1h);
                                   });
                                 },
                                 token);
                             js.run(
                                 done,
                                 [&](Context& ctx) {
                                   return co_counted(ctx, probe, [&event](Context& context) {
                                     return context.wait_for(event, 1h);
                                   });
                                 },
                                 token);
                             js.run(
                                 done,
                                 [&] {
                                   const Guard guard(probe);
                                   counted(probe, [&] { (void)this_fiber::wait_for(never, 1h); });
                                 },
                                 token);
                             js.run(
                                 done,
                                 [&] {
                                   const Guard guard(probe);
                                   counted(probe, [&] { (void)this_fiber::wait_for(event, 1h); });
                                 },
                                 token);
                           });
    }
  }

  TEST_CASE("10,000 coroutine jobs suspended on one counter are all woken by one stop") {
    test::Watchdog watchdog("10k stopped waiters", 300s);
    stop_while_suspended(
        2, 10'000, 1,
        [](JobSystem& js, Counter& done, std::stop_token token, Probe& probe, Counter& never) {
          js.run(
              done, [&](Context& ctx) { return co_wait_inner(ctx, probe, never); }, token);
        });
  }
}
