// A stop racing the event that ends a wait (a signal, a timeout): exactly one of them ends it,
// never both and never neither, also with many waiters of every kind on one counter. A sleep or
// timed wait in a job stopped before it throws at once. when_any's losing sleeper is woken by the
// stop, not by its deadline.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <array>
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

/// How one wait ended; each wait records exactly one.
struct Outcomes {
  std::atomic<int> completed{0};  // the signal, or the timer, ended it
  std::atomic<int> cancelled{0};  // the stop ended it
};

/// Runs `wait()` in a job, recording how it ended in `outcomes`.
template <class Wait>
void record_outcome(Outcomes& outcomes, Wait&& wait) {
  try {
    wait();
    outcomes.completed.fetch_add(1);
  } catch (const Error& error) {
    if (error.code() == ErrorCode::Cancelled) outcomes.cancelled.fetch_add(1);
  }
}

/// One round: `spawn(done, token, waiting)` starts a job with `token` that sets `waiting` and
/// waits; once it is about to wait, a helper job runs `release` (a signal) while this thread
/// requests the stop. They race; the wait must end exactly once.
template <class Spawn, class Release>
void race_with_stop(JobSystem& js, Spawn spawn, Release release) {
  std::stop_source source;
  std::atomic<bool> waiting{false};
  Counter done;
  spawn(done, source.get_token(), waiting);
  while (!waiting.load()) std::this_thread::yield();
  Counter helper;
  js.run(helper, [&] { release(); });
  source.request_stop();
  js.wait(helper);
  js.wait(done);
}

/// A round of race_with_stop whose job is a coroutine awaiting `wait(ctx)`.
template <class Wait, class Release>
void race_once(JobSystem& js, Outcomes& outcomes, Wait wait, Release release) {
  race_with_stop(
      js,
      [&](Counter& done, std::stop_token token, std::atomic<bool>& waiting) {
        js.run(
            done,
            [&](Context& ctx) -> Task<> {
              waiting.store(true);
              try {
                co_await wait(ctx);
                outcomes.completed.fetch_add(1);
              } catch (const Error& error) {
                if (error.code() == ErrorCode::Cancelled) outcomes.cancelled.fetch_add(1);
              }
            },
            std::move(token));
      },
      release);
}

/// Runs `rounds` rounds of `round(js, outcomes, index)` on two workers; each must end its wait
/// exactly once. `winner` names what competes with the stop.
template <class Round>
void run_rounds(const char* what, int rounds, const char* winner, Round round) {
  test::Watchdog watchdog(what, 300s);
  JobSystem js{test::config_with(2)};
  Outcomes outcomes;
  for (int index = 0; index < rounds; ++index) {
    round(js, outcomes, index);
    REQUIRE(outcomes.completed.load() + outcomes.cancelled.load() == index + 1);
  }
  MESSAGE(std::string(winner) << " won " << outcomes.completed.load() << ", stop won "
                              << outcomes.cancelled.load());
}

/// The waiters of one many_waiters_round, by what their token does: requested (the stop races
/// the signals), kept (a token whose stop is never requested: a stoppable wait all the same)
/// and none (the lock-free wait list). Each group has kPerForm coroutine and kPerForm plain-job
/// waiters.
struct ManyWaiters {
  static constexpr int kPerForm = 24;
  static constexpr int kPerGroup = 2 * kPerForm;
  Outcomes requested;
  Outcomes kept;
  Outcomes none;
  std::atomic<int> waiting{0};
};

/// Spawns one waiter on `gate` into `done`, recording into `outcomes`: a coroutine awaiting
/// ctx.wait(gate) or a plain job in this_fiber::wait(gate), with `token` if it has one.
void spawn_gate_waiter(JobSystem& js, Counter& done, Counter& gate, ManyWaiters& waiters,
                       Outcomes& outcomes, bool coroutine, const std::stop_token* token) {
  auto spawn = [&](auto job) {
    if (token != nullptr) {
      js.run(done, std::move(job), *token);
    } else {
      js.run(done, std::move(job));
    }
  };
  if (coroutine) {
    spawn([&](Context& ctx) -> Task<> {
      waiters.waiting.fetch_add(1);
      try {
        co_await ctx.wait(gate);
        outcomes.completed.fetch_add(1);
      } catch (const Error& error) {
        if (error.code() == ErrorCode::Cancelled) outcomes.cancelled.fetch_add(1);
      }
    });
  } else {
    spawn([&] {
      waiters.waiting.fetch_add(1);
      record_outcome(outcomes, [&] { this_fiber::wait(gate); });
    });
  }
}

/// One round: every group's waiters wait on a gate of `units` units; once all are about to
/// wait, a helper job signals the units one by one while this thread requests the stops of the
/// "requested" group. Every wait must end exactly once; only a requested stop may cancel one.
/// \return how many of the requested group's waits the stop ended.
int many_waiters_round(JobSystem& js, std::int64_t units) {
  ManyWaiters waiters;
  std::array<std::stop_source, ManyWaiters::kPerGroup> requested;
  std::stop_source kept;  // never stopped
  const std::stop_token kept_token = kept.get_token();
  Counter gate;
  gate.add(units);
  Counter done;
  for (int i = 0; i < ManyWaiters::kPerGroup; ++i) {
    const bool coroutine = i % 2 == 0;  // the forms interleaved on the list
    const std::stop_token token = requested[static_cast<std::size_t>(i)].get_token();
    spawn_gate_waiter(js, done, gate, waiters, waiters.requested, coroutine, &token);
    spawn_gate_waiter(js, done, gate, waiters, waiters.kept, coroutine, &kept_token);
    spawn_gate_waiter(js, done, gate, waiters, waiters.none, coroutine, nullptr);
  }
  while (waiters.waiting.load() < 3 * ManyWaiters::kPerGroup) std::this_thread::yield();
  Counter helper;
  js.run(helper, [&] {
    for (std::int64_t unit = 0; unit < units; ++unit) gate.signal();
  });
  for (std::stop_source& source : requested) source.request_stop();
  js.wait(helper);
  js.wait(done);
  CHECK(waiters.requested.completed.load() + waiters.requested.cancelled.load() ==
        ManyWaiters::kPerGroup);
  CHECK(waiters.kept.completed.load() == ManyWaiters::kPerGroup);
  CHECK(waiters.kept.cancelled.load() == 0);
  CHECK(waiters.none.completed.load() == ManyWaiters::kPerGroup);
  CHECK(waiters.none.cancelled.load() == 0);
  return waiters.requested.cancelled.load();
}

}  // namespace

TEST_SUITE("stop wakes suspended waits") {
  TEST_CASE("stops racing the signals of a counter with many waiters of every kind") {
    test::Watchdog watchdog("stops race signals, many waiters", 300s);
    JobSystem js{test::config_with(2)};
    constexpr int kRounds = 200;
    int stop_won = 0;
    for (int round = 0; round < kRounds; ++round) {
      CAPTURE(round);
      stop_won += many_waiters_round(js, 1 + round % 3);  // the final signal alone, or after others
    }
    MESSAGE("the stop ended " << stop_won << " of " << kRounds * ManyWaiters::kPerGroup
                              << " requested waits; the signals the others");
  }

  TEST_CASE("stop racing a signal: exactly one of them ends each counter wait") {
    run_rounds("stop races signal", 2'000, "signal", [](JobSystem& js, Outcomes& outcomes, int) {
      Counter gate;
      gate.add(1);
      race_once(
          js, outcomes, [&](Context& ctx) { return ctx.wait(gate); }, [&] { gate.signal(); });
    });
  }

  TEST_CASE("stop racing a signal in a plain job's this_fiber::wait") {
    run_rounds("stop races signal, plain", 2'000, "signal",
               [](JobSystem& js, Outcomes& outcomes, int) {
                 Counter gate;
                 gate.add(1);
                 race_with_stop(
                     js,
                     [&](Counter& done, std::stop_token token, std::atomic<bool>& waiting) {
                       js.run(
                           done,
                           [&] {
                             waiting.store(true);
                             record_outcome(outcomes, [&] { this_fiber::wait(gate); });
                           },
                           std::move(token));
                     },
                     [&] { gate.signal(); });
               });
  }

  TEST_CASE("stop racing a timeout: a short timed wait and a short sleep end exactly once") {
    run_rounds(
        "stop races timer", 1'000, "timer", [](JobSystem& js, Outcomes& outcomes, int round) {
          Counter never;
          never.add(1);
          if (round % 2 == 0) {
            race_once(
                js, outcomes,
                [&](Context& ctx) -> Task<> { (void)co_await ctx.wait_for(never, 100us); }, [] {});
          } else {
            race_once(
                js, outcomes, [&](Context& ctx) { return ctx.sleep_for(100us); }, [] {});
          }
          never.signal();
        });
  }

  TEST_CASE("a job stopped before it sleeps or waits with a timeout throws at once") {
    test::Watchdog watchdog("stopped before", 60s);
    JobSystem js{test::config_with(2)};
    std::stop_source source;
    source.request_stop();
    Counter never;
    never.add(1);
    Event event(Event::Mode::Manual, true);  // set: a wait would take it at once
    std::atomic<int> cancelled{0};
    Counter done;
    auto expect_cancelled = [&](auto&& wait) {
      try {
        wait();
      } catch (const Error& error) {
        if (error.code() == ErrorCode::Cancelled) cancelled.fetch_add(1);
      }
    };
    js.run(
        done,
        [&](Context& ctx) -> Task<> {
          for (const std::chrono::milliseconds duration : {0ms, 3'600'000ms}) {
            try {
              co_await ctx.sleep_for(duration);
            } catch (const Error& error) {
              if (error.code() == ErrorCode::Cancelled) cancelled.fetch_add(1);
            }
          }
          try {
            (void)co_await ctx.wait_for(event, 1h);
          } catch (const Error& error) {
            if (error.code() == ErrorCode::Cancelled) cancelled.fetch_add(1);
          }
          try {
            (void)co_await ctx.wait_for(never, 1h);
          } catch (const Error& error) {
            if (error.code() == ErrorCode::Cancelled) cancelled.fetch_add(1);
          }
        },
        source.get_token());
    js.run(
        done,
        [&] {
          expect_cancelled([] { this_fiber::sleep_for(1h); });
          expect_cancelled([&] { (void)this_fiber::wait_for(event, 1h); });
          expect_cancelled([&] { (void)this_fiber::wait_for(never, 1h); });
        },
        source.get_token());
    js.wait(done);
    CHECK(cancelled.load() == 7);
    CHECK(event.is_set());  // no stopped wait took the set
    never.signal();
  }

  TEST_CASE("when_any of a short and a long sleeper: the stop wakes the loser") {
    // The loser sleeps an hour: only the stop can end it (else the watchdog fails the test),
    // and it records that it woke before its deadline.
    test::Watchdog watchdog("when_any sleepers", 60s);
    JobSystem js{test::config_with(2)};
    Context& ctx = js.context();
    std::atomic<int> loser_cancelled{0};
    std::atomic<int> loser_early{0};
    auto sleeper = [&](std::chrono::milliseconds duration, int id) -> Task<int> {
      const TimerClock::time_point deadline = TimerClock::now() + duration;
      try {
        co_await ctx.sleep_until(deadline);
      } catch (const Error& error) {
        if (error.code() == ErrorCode::Cancelled) loser_cancelled.fetch_add(1);
        if (TimerClock::now() < deadline) loser_early.fetch_add(1);
        throw;
      }
      co_return id;
    };
    const WhenAnyResult<int> result =
        sync_wait(js, when_any(ctx, sleeper(5ms, 0), sleeper(std::chrono::hours(1), 1)));
    CHECK(result.index == 0);
    CHECK(result.value == 0);
    CHECK(loser_cancelled.load() == 1);
    CHECK(loser_early.load() == 1);  // woken by the stop, not by its deadline
  }
}
