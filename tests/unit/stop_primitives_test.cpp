// Untimed waits on Event, Mutex, Semaphore and ConditionVariable are cancellation points: a
// stop wakes a waiter suspended on them (coroutine and plain forms) while the jobs without a
// stop keep using the primitive; and a stop racing the set, unlock, release or notify that
// ends the wait ends it exactly once and loses nothing (no set swallowed, no lock or permit
// kept, no notify dropped). A blocking call's stop waits for the running function, and takes a
// queued one off the queue. A hang here is a wake the stop did not give, or a hand-off lost: the
// watchdog turns it into a failure.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>

#include "support/cancellation.hpp"
#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

/// How the waits of a case ended.
struct Outcomes {
  std::atomic<int> waiting{0};    // waits about to begin
  std::atomic<int> completed{0};  // waits that returned
  std::atomic<int> cancelled{0};  // waits that threw Cancelled
};

/// Runs `wait()`, recording how it ended (a Cancelled error is recorded, then rethrown).
template <class Wait>
void record(Outcomes& outcomes, Wait&& wait) {
  outcomes.waiting.fetch_add(1);
  try {
    wait();
    outcomes.completed.fetch_add(1);
  } catch (const Error& error) {
    if (test::is_cancelled(error)) outcomes.cancelled.fetch_add(1);
    throw;
  }
}

/// The coroutine form of `record`: awaits `wait(ctx)`.
template <class Wait>
Task<> co_record(Context& ctx, Outcomes& outcomes, Wait wait) {
  outcomes.waiting.fetch_add(1);
  try {
    co_await wait(ctx);
    outcomes.completed.fetch_add(1);
  } catch (const Error& error) {
    if (test::is_cancelled(error)) outcomes.cancelled.fetch_add(1);
    throw;
  }
}

/// Spawns one job on `js` that waits through `scenario`: the coroutine form when `coroutine`,
/// else the plain form; with `token` (a stop may end it) or without one.
template <class Scenario>
void spawn_waiter(JobSystem& js, Counter& done, Scenario& scenario, Outcomes& outcomes,
                  bool coroutine, std::stop_token token) {
  if (coroutine) {
    js.run(
        done,
        [&scenario, &outcomes](Context& ctx) {
          return co_record(ctx, outcomes,
                           [&scenario](Context& job) { return scenario.co_wait(job); });
        },
        std::move(token));
  } else {
    js.run(
        done, [&scenario, &outcomes] { record(outcomes, [&scenario] { scenario.plain_wait(); }); },
        std::move(token));
  }
}

/// Mutex: held by the test thread; each waiter locks, counts itself in, unlocks.
struct MutexScenario {
  Mutex mutex;
  int inside = 0;  // guarded by mutex
  void block() { mutex.lock(); }
  void unblock() { mutex.unlock(); }
  Task<> co_wait(Context& /*ctx*/) {
    auto guard = co_await mutex.scoped_lock();
    ++inside;
  }
  void plain_wait() {
    const std::lock_guard lock(mutex);
    ++inside;
  }
  void check(int passed) {
    CHECK(inside == passed);
    CHECK(mutex.try_lock());  // free: no cancelled waiter kept it
    mutex.unlock();
  }
};

/// Semaphore with no permit; each waiter takes one and gives it back.
struct SemaphoreScenario {
  Semaphore semaphore{0};
  void block() {}
  void unblock() { semaphore.release(1); }
  Task<> co_wait(Context& /*ctx*/) {
    co_await semaphore.acquire_async();
    semaphore.release(1);
  }
  void plain_wait() {
    semaphore.acquire();
    semaphore.release(1);
  }
  void check(int) { CHECK(semaphore.available() == 1); }  // the one permit, never lost
};

/// Auto-reset Event: each waiter takes one set and sets it again for the next one.
struct EventScenario {
  Event event{Event::Mode::Auto};
  void block() {}
  void unblock() { event.set(); }
  Task<> co_wait(Context& /*ctx*/) {
    co_await event;
    event.set();
  }
  void plain_wait() {
    this_fiber::wait(event);
    event.set();
  }
  void check(int) { CHECK(event.is_set()); }  // the last waiter's set: none was swallowed
};

/// Auto-reset Event waited on with a far deadline (the timed forms, `wait_for`): as
/// EventScenario; a wait that times out is an error (the deadline is an hour away).
struct TimedEventScenario {
  Event event{Event::Mode::Auto};
  void block() {}
  void unblock() { event.set(); }
  Task<> co_wait(Context& ctx) {
    const bool set = co_await ctx.wait_for(event, 1h);
    if (!set) throw std::logic_error("timed out");
    event.set();
  }
  void plain_wait() {
    if (!this_fiber::wait_for(event, 1h)) throw std::logic_error("timed out");
    event.set();
  }
  void check(int) { CHECK(event.is_set()); }  // the last waiter's set: none was swallowed
};

/// ConditionVariable with a predicate, notified one at a time: each waiter through notifies
/// the next. A cancelled waiter throws owning the mutex (its lock or guard then unlocks it,
/// which aborts if it does not own it), one at a time.
struct ConditionScenario {
  Mutex mutex;
  ConditionVariable cv;
  bool go = false;  // guarded by mutex
  int inside = 0;   // guarded by mutex
  std::atomic<int> holding{0};
  std::atomic<int> overlaps{0};
  void block() {}
  void unblock() {
    {
      const std::lock_guard lock(mutex);
      go = true;
    }
    cv.notify_one();
  }
  /// In a cancelled waiter's catch: it must hold the mutex alone.
  void note_held() {
    if (holding.fetch_add(1) != 0) overlaps.fetch_add(1);
    std::this_thread::yield();
    holding.fetch_sub(1);
  }
  Task<> co_wait(Context& /*ctx*/) {
    auto guard = co_await mutex.scoped_lock();
    try {
      while (!go) co_await cv.wait(guard);
    } catch (const Error&) {
      note_held();
      throw;
    }
    ++inside;
    cv.notify_one();
  }
  void plain_wait() {
    std::unique_lock lock(mutex);
    try {
      cv.wait(lock, [this] { return go; });
    } catch (const Error&) {
      note_held();
      throw;
    }
    ++inside;
    cv.notify_one();
  }
  void check(int passed) {
    CHECK(overlaps.load() == 0);
    CHECK(inside == passed);
  }
};

/// `stopped` waiters with a stop token and as many without, interleaved and alternating the
/// coroutine and plain forms, wait on the blocked primitive; the stop must wake exactly the
/// stopped ones (Cancelled), then the unblocked primitive lets every other one through.
template <class Scenario>
void stop_some_waiters(std::uint32_t workers, int stopped) {
  CAPTURE(workers);
  JobSystem js{test::config_with(workers)};
  Scenario scenario;
  scenario.block();
  std::stop_source source;
  Outcomes outcomes;
  Counter cancelled_jobs;
  Counter other_jobs;
  for (int i = 0; i < stopped; ++i) {
    spawn_waiter(js, cancelled_jobs, scenario, outcomes, i % 2 == 0, source.get_token());
    spawn_waiter(js, other_jobs, scenario, outcomes, i % 2 == 1, std::stop_token{});
  }
  while (outcomes.waiting.load() < 2 * stopped) std::this_thread::yield();
  // Give the waits time to suspend; one that has not yet throws at once, with the same
  // outcome, but only a suspended one hangs without the wake.
  std::this_thread::sleep_for(20ms);
  source.request_stop();
  try {
    js.wait(cancelled_jobs);
    FAIL("the stopped waiters' Cancelled error was not rethrown");
  } catch (const Error& error) {
    CHECK(test::is_cancelled(error));
  }
  CHECK(outcomes.cancelled.load() == stopped);
  CHECK(outcomes.completed.load() == 0);
  scenario.unblock();
  js.wait(other_jobs);
  CHECK(outcomes.completed.load() == stopped);
  scenario.check(stopped);
}

/// One round of a race on `scenario`'s blocked primitive: a job with a stop token and then a
/// bystander without one wait on it; a helper job requests the first one's stop while this
/// thread unblocks the primitive once. The stop and the hand-off must end the stopped wait
/// exactly once, and what the hand-off gave must reach the bystander (each waiter passes it on
/// when it is through): a lost set, lock, permit or notify leaves the bystander waiting.
template <class Scenario>
void race_round(JobSystem& js, Outcomes& outcomes, bool coroutine, int delay) {
  Scenario scenario;
  scenario.block();
  std::stop_source source;
  const int waiting = outcomes.waiting.load();
  const int completed = outcomes.completed.load();
  Counter stopped;
  spawn_waiter(js, stopped, scenario, outcomes, coroutine, source.get_token());
  while (outcomes.waiting.load() == waiting) std::this_thread::yield();
  Counter bystander;
  spawn_waiter(js, bystander, scenario, outcomes, !coroutine, std::stop_token{});
  while (outcomes.waiting.load() == waiting + 1) std::this_thread::yield();
  Counter helper;
  js.run(helper, [&source, delay] {
    std::atomic<int> spins{0};  // a busy delay of `delay` steps: the waiter may finish first
    while (spins.fetch_add(1, std::memory_order_relaxed) < delay) {
    }
    source.request_stop();
  });
  scenario.unblock();
  js.wait(helper);
  js.wait(bystander);
  try {
    js.wait(stopped);
  } catch (const Error& error) {
    REQUIRE(test::is_cancelled(error));
  }
  scenario.check(outcomes.completed.load() - completed);
}

template <class Scenario>
void race_many(const char* what, int rounds) {
  test::Watchdog watchdog(what, 300s);
  JobSystem js{test::config_with(2)};
  Outcomes outcomes;
  for (int round = 0; round < rounds; ++round) {
    race_round<Scenario>(js, outcomes, round % 2 == 0, (round % 64) * 256);
    // Every round ends both waits: the bystander's always completes.
    REQUIRE(outcomes.completed.load() + outcomes.cancelled.load() == 2 * (round + 1));
  }
  MESSAGE(std::string(what) << ": the stop ended " << outcomes.cancelled.load() << " of " << rounds
                            << " stopped waits");
}

}  // namespace

TEST_SUITE("stop wakes waits on the primitives") {
  TEST_CASE("a stop wakes the stopped waiters of each primitive; the others get through") {
    test::Watchdog watchdog("stop wakes primitive waits", 120s);
    for (std::uint32_t workers : {1u, 2u, 4u}) {
      stop_some_waiters<MutexScenario>(workers, 4);
      stop_some_waiters<SemaphoreScenario>(workers, 4);
      stop_some_waiters<EventScenario>(workers, 4);
      stop_some_waiters<ConditionScenario>(workers, 4);
    }
  }

  TEST_CASE("a job stopped before a wait that must suspend throws at once; free ones pass") {
    test::Watchdog watchdog("stopped before primitive waits", 60s);
    JobSystem js{test::config_with(2)};
    std::stop_source source;
    source.request_stop();
    Outcomes outcomes;
    MutexScenario held;
    held.block();
    SemaphoreScenario empty;
    EventScenario unset;
    ConditionScenario condition;
    Counter done;
    for (bool coroutine : {true, false}) {
      spawn_waiter(js, done, held, outcomes, coroutine, source.get_token());
      spawn_waiter(js, done, empty, outcomes, coroutine, source.get_token());
      spawn_waiter(js, done, unset, outcomes, coroutine, source.get_token());
      spawn_waiter(js, done, condition, outcomes, coroutine, source.get_token());
    }
    CHECK_THROWS_AS(js.wait(done), Error);
    CHECK(outcomes.cancelled.load() == 8);
    held.unblock();
    held.check(0);
    CHECK(empty.semaphore.available() == 0);
    CHECK(!unset.event.is_set());
    condition.check(0);
    // Free primitives are taken as usual, also after the stop (as a counter at zero). The two
    // jobs run one after the other: while one holds the mutex or the permit, the other would
    // have to suspend, and, stopped, it would throw.
    Counter free_done;
    Event set_event{Event::Mode::Manual, true};
    Semaphore permit{1};
    Mutex free_mutex;
    js.run(
        free_done,
        [&](Context&) -> Task<> {
          co_await set_event;
          co_await permit.acquire_async();
          permit.release();
          auto guard = co_await free_mutex.scoped_lock();
        },
        source.get_token());
    js.wait(free_done);
    js.run(
        free_done,
        [&] {
          this_fiber::wait(set_event);
          permit.acquire();
          permit.release();
          const std::lock_guard lock(free_mutex);
        },
        source.get_token());
    js.wait(free_done);
    CHECK(permit.available() == 1);
  }

  TEST_CASE("blocking(fn): a stop while fn runs waits for fn, then throws; before, fn never runs") {
    test::Watchdog watchdog("stop and blocking calls", 60s);
    JobSystem js{test::config_with(2)};
    std::stop_source source;
    std::atomic<int> started{0};
    std::atomic<bool> release{false};
    std::atomic<bool> returned[2] = {false, false};  // per job: its fn returned
    std::atomic<int> cancelled_after_return{0};
    // Blocks its pool thread until the test releases it, then marks job `id`'s call returned.
    auto blocking_fn = [&](int id) {
      return [&started, &release, &returned, id] {
        started.fetch_add(1);
        while (!release.load()) std::this_thread::sleep_for(1ms);
        returned[id].store(true);
        return 7;
      };
    };
    auto note = [&](const Error& error, int id) {
      // Its fn returned before the job went on: the job did not leave what fn may use.
      if (test::is_cancelled(error) && returned[id].load()) cancelled_after_return.fetch_add(1);
    };
    // Job 0 calls co_await ctx.blocking, job 1 this_fiber::blocking; `on_error(error, id)`.
    auto spawn_both = [&](Counter& done, auto on_error) {
      js.run(
          done,
          [&, on_error](Context& ctx) -> Task<> {
            try {
              (void)co_await ctx.blocking(blocking_fn(0));
            } catch (const Error& error) {
              on_error(error, 0);
            }
          },
          source.get_token());
      js.run(
          done,
          [&, on_error] {
            try {
              (void)this_fiber::blocking(blocking_fn(1));
            } catch (const Error& error) {
              on_error(error, 1);
            }
          },
          source.get_token());
    };
    Counter done;
    spawn_both(done, note);
    while (started.load() < 2) std::this_thread::yield();
    source.request_stop();
    std::this_thread::sleep_for(20ms);  // a wake by the stop would end a job now, too early
    release.store(true);
    js.wait(done);
    CHECK(cancelled_after_return.load() == 2);
    // Stopped before the call: fn never runs.
    Counter stopped_done;
    std::atomic<int> cancelled{0};
    spawn_both(stopped_done, [&cancelled](const Error& error, int) {
      if (test::is_cancelled(error)) cancelled.fetch_add(1);
    });
    js.wait(stopped_done);
    CHECK(cancelled.load() == 2);
    CHECK(started.load() == 2);
  }

  TEST_CASE("blocking(fn): a stop while the call is queued wakes the job at once; fn never runs") {
    // One pool thread, held by an unrelated call until the end: the stopped jobs' calls queue
    // behind it. The stop must take them off the queue and wake the jobs while that call still
    // runs (a wake that waited for it would hang here: the watchdog reports it), and their
    // functions must never run, not even once the pool thread is free again.
    test::Watchdog watchdog("stop of queued blocking calls", 60s);
    Config config = test::config_with(1);
    config.max_blocking_threads = 1;
    JobSystem js{config};
    std::atomic<bool> busy{false};
    std::atomic<bool> release{false};
    Counter busy_done;
    js.run(busy_done, [&] {
      this_fiber::blocking([&] {
        busy.store(true);
        while (!release.load()) std::this_thread::sleep_for(1ms);
      });
    });
    while (!busy.load()) std::this_thread::yield();
    const std::uint32_t fibers_before = js.stats().fibers_in_use;
    std::stop_source source;
    std::atomic<int> entered{0};
    std::atomic<int> fn_ran{0};
    std::atomic<int> cancelled{0};
    Counter done;
    js.run(
        done,
        [&](Context& ctx) -> Task<> {
          entered.fetch_add(1);
          try {
            co_await ctx.blocking([&fn_ran] { fn_ran.fetch_add(1); });
          } catch (const Error& error) {
            if (test::is_cancelled(error)) cancelled.fetch_add(1);
          }
        },
        source.get_token());
    js.run(
        done,
        [&] {
          entered.fetch_add(1);
          try {
            this_fiber::blocking([&fn_ran] { fn_ran.fetch_add(1); });
          } catch (const Error& error) {
            if (test::is_cancelled(error)) cancelled.fetch_add(1);
          }
        },
        source.get_token());
    // Both have entered and the plain one has suspended (its fiber stays in use); the
    // coroutine, run first on the one worker, queued its call before that.
    while (entered.load() < 2 || js.stats().fibers_in_use < fibers_before + 1) {
      std::this_thread::yield();
    }
    std::this_thread::sleep_for(2ms);  // the plain job's call is queued once its fiber stopped
    source.request_stop();
    js.wait(done);  // with the unrelated call still running
    CHECK(busy.load());
    CHECK_FALSE(release.load());
    CHECK(cancelled.load() == 2);
    release.store(true);
    js.wait(busy_done);
    // The pool still counts right: a later call runs (behind any call left queued, FIFO).
    Counter after_done;
    int value = 0;
    js.run(after_done, [&value] { value = this_fiber::blocking([] { return 5; }); });
    js.wait(after_done);
    CHECK(value == 5);
    CHECK(fn_ran.load() == 0);
  }

  TEST_CASE(
      "blocking(fn): a stop racing the pool thread's take: the job never ends while fn runs") {
    // The unrelated call ends while the stop comes: exactly one of the stop (fn never runs)
    // and the pool thread (fn runs once, and the job waits for it) gets each queued call.
    test::Watchdog watchdog("stop racing a blocking call's take", 120s);
    Config config = test::config_with(2);
    config.max_blocking_threads = 1;
    JobSystem js{config};
    int unqueued = 0;
    for (int round = 0; round < 300; ++round) {
      std::atomic<bool> busy{false};
      std::atomic<bool> release{false};
      std::atomic<int> entered{0};
      std::atomic<int> running[2] = {0, 0};  // per job: its fn runs now
      std::atomic<int> ran{0};
      std::atomic<int> ended_while_running{0};
      std::atomic<int> cancelled{0};
      std::atomic<int> completed{0};
      std::stop_source source;
      Counter done;
      js.run(done, [&] {
        this_fiber::blocking([&] {
          busy.store(true);
          while (!release.load()) std::this_thread::yield();
        });
      });
      while (!busy.load()) std::this_thread::yield();
      auto fn = [&running, &ran](int id) {
        return [&running, &ran, id] {
          running[id].fetch_add(1);
          ran.fetch_add(1);
          for (int spin = 0; spin < 200; ++spin) std::this_thread::yield();
          running[id].fetch_sub(1);
        };
      };
      auto ended = [&](int id, bool was_cancelled) {
        if (running[id].load() != 0) ended_while_running.fetch_add(1);
        (was_cancelled ? cancelled : completed).fetch_add(1);
      };
      js.run(
          done,
          [&](Context& ctx) -> Task<> {
            entered.fetch_add(1);
            bool was_cancelled = false;
            try {
              co_await ctx.blocking(fn(0));
            } catch (const Error& error) {
              was_cancelled = test::is_cancelled(error);
            }
            ended(0, was_cancelled);
          },
          source.get_token());
      js.run(
          done,
          [&] {
            entered.fetch_add(1);
            bool was_cancelled = false;
            try {
              this_fiber::blocking(fn(1));
            } catch (const Error& error) {
              was_cancelled = test::is_cancelled(error);
            }
            ended(1, was_cancelled);
          },
          source.get_token());
      while (entered.load() < 2) std::this_thread::yield();
      for (int spin = 0; spin < round % 32; ++spin) std::this_thread::yield();
      std::thread stopper([&source] { source.request_stop(); });
      release.store(true);
      stopper.join();
      js.wait(done);
      REQUIRE(ended_while_running.load() == 0);
      REQUIRE(cancelled.load() + completed.load() == 2);
      REQUIRE(ran.load() <= 2);
      REQUIRE(completed.load() <= ran.load());  // a job that did not throw got its fn's run
      unqueued += 2 - ran.load();
    }
    MESSAGE("calls the stop took off the queue (or stopped before queueing): ", unqueued);
  }

  TEST_CASE("a stop racing unlock, release, set and notify ends each wait exactly once") {
    // The stopped waiter takes the coroutine form in even rounds, the plain one in odd rounds
    // (the bystander the other). Each round's check: the mutex is free, the permit is back,
    // the auto-reset event is set again (by the last waiter through, or the one that took the
    // set and was stopped; also in the timed waits).
    race_many<MutexScenario>("stop races unlock", 2'000);
    race_many<SemaphoreScenario>("stop races release", 2'000);
    race_many<EventScenario>("stop races set", 2'000);
    race_many<TimedEventScenario>("stop races set, timed wait", 2'000);
    race_many<ConditionScenario>("stop races notify", 2'000);
  }
}
