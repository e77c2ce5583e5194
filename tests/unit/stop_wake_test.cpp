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

#include "support/captured_stderr.hpp"
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

  TEST_CASE("an attached thread's own stack parked for lack of fibers is woken by the stop") {
    // One worker and a hard limit of three fibers: two plain jobs suspended on `hold` and the
    // worker's running fiber take all three. An affine plain job with a stop token runs
    // inline on the attached (main) thread's own stack; its waits find no fiber to run other
    // work on, so the thread parks on its own stack. The stop must wake that park.
    test::Watchdog watchdog("attached thread parked with a stop", 120s);
    Config config = test::config_with(1, 1);
    config.attachable_threads = 1;
    config.max_fiber_count = 3;
    JobSystem js{config};
    Event hold;
    Counter holders;
    std::atomic<int> held{0};
    for (int i = 0; i < 2; ++i) {
      js.run(holders, [&] {
        held.fetch_add(1);
        hold.wait();
      });
    }
    while (held.load() < 2 || js.stats().fibers_in_use < 3) std::this_thread::yield();
    {
      AttachedWorker main_thread{js};
      Counter never;
      never.add(1);
      Event never_set;
      std::atomic<int> cancelled{0};
      // Each form in turn: a counter wait, a sleep, a timed counter wait, timed Event waits
      // (wait_for, wait_until), an untimed Event wait.
      for (int form = 0; form < 6; ++form) {
        CAPTURE(form);
        std::stop_source source;
        Counter done;
        main_thread.spawn(
            done,
            [&never, &never_set, &cancelled, form] {
              try {
                if (form == 0) this_fiber::wait(never);
                if (form == 1) this_fiber::sleep_for(1h);
                if (form == 2) (void)this_fiber::wait_for(never, 1h);
                if (form == 3) (void)this_fiber::wait_for(never_set, 1h);
                if (form == 4) (void)this_fiber::wait_until(never_set, TimerClock::now() + 1h);
                if (form == 5) never_set.wait();
              } catch (const Error& error) {
                if (error.code() == ErrorCode::Cancelled) cancelled.fetch_add(1);
              }
            },
            source.get_token());
        std::thread stopper([&source] {
          std::this_thread::sleep_for(50ms);  // mostly after the wait parked (either is right)
          source.request_stop();
        });
        CHECK(main_thread.run_pending() == 1);  // returns once the job ended
        stopper.join();
        js.wait(done);
        CHECK(cancelled.load() == form + 1);
      }
      never.signal();
    }
    hold.set();
    js.wait(holders);
  }

  TEST_CASE("a stop that wakes a job after the destructor stopped the workers is reported") {
    // The stopped job can no longer run (it stays suspended, its memory kept); the stop says
    // that request_stop() raced the destructor instead of leaving only the destructor's count.
    test::Watchdog watchdog("stop after the destruction", 60s);
    alignas(Counter) static unsigned char storage[sizeof(Counter)];
    Counter* never = ::new (storage) Counter();  // never destroyed: a waiter stays linked
    never->add(1);
    std::stop_source source;
    std::string report;
    Counter done;  // the stuck job's: signalled by hand at the end, as it never ends
    {
      test::CapturedStderr captured;
      {
        JobSystem js{test::config_with(1)};
        std::atomic<bool> waiting{false};
        js.run(
            done,
            [never, &waiting](Context& ctx) -> Task<> {
              waiting.store(true);
              co_await ctx.wait(*never);
            },
            source.get_token());
        while (!waiting.load()) std::this_thread::yield();
        std::this_thread::sleep_for(10ms);  // let it suspend (reported either way)
      }  // the destructor reports the suspended job and keeps the system's memory
      source.request_stop();
      report = captured.text();
    }
    CHECK(report.find("request_stop() came too late for the JobSystem's destructor") !=
          std::string::npos);
    CHECK(done.pending() == 1);  // the stopped job never ran again
    done.signal();
  }
}
