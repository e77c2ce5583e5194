// Ports, in spirit, of the peers' tests of the same features, on fiberjob's Event, Mutex and
// ConditionVariable: marl's event and condition-variable tests (src/event_test.cpp,
// src/conditionvariable_test.cpp; its ticket test is in mutex_test.cpp), Boost.Fiber's mutex
// and condition tests (test/test_mutex.cpp, test/test_condition_variable.cpp) and
// FiberTaskingLib's fibtex test (tests/utilities/fibtex.cpp). Each case names what it
// follows. Written for fiberjob: waiters are plain jobs (fibers), coroutine jobs and plain
// threads, on several worker counts.
//
// Not ported, because fiberjob has no such feature: marl's Event::any, Boost.Fiber's timed,
// recursive and recursive-timed mutexes and the condition variable's timed waits (wait_for,
// wait_until), FiberTaskingLib's fibtex lock behaviours (fiberjob::Mutex always suspends; the
// spinning variants below spin on try_lock themselves).

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

/// Waits until `fibers` fibers are in use (the jobs started and suspended), then a moment
/// more: their links complete asynchronously after the switch.
void wait_until_suspended(JobSystem& js, std::size_t fibers) {
  while (js.stats().fibers_in_use < fibers) std::this_thread::yield();
  std::this_thread::sleep_for(10ms);
}

/// Waits until `value` reaches `target` (the jobs' effects, seen from the test thread).
void wait_for_value(const std::atomic<int>& value, int target) {
  while (value.load() < target) std::this_thread::yield();
}

}  // namespace

TEST_SUITE("ports: marl") {
  TEST_CASE("a chain of events runs its waiters in the chain's order (marl EventSequence)") {
    test::Watchdog watchdog("event sequence", 60s);
    for (const Event::Mode mode : {Event::Mode::Manual, Event::Mode::Auto}) {
      for (std::uint32_t workers : test::kWorkerCounts) {
        CAPTURE(workers);
        JobSystem js{test::config_with(workers)};
        Event a(mode);
        Event b(mode);
        Event c(mode);
        Event finished(mode);
        std::string sequence;  // ordered by the events: each append happens after a set
        Counter done;
        js.run(done, [&] {  // waits for B (plain job)
          this_fiber::wait(b);
          sequence += 'B';
          c.set();
        });
        js.run(done, [&](Context&) -> Task<> {  // waits for A (coroutine job)
          co_await a;
          sequence += 'A';
          b.set();
        });
        js.run(done, [&](Context& ctx) -> Task<> {  // waits for C, with a timed wait
          const bool set = co_await ctx.wait_for(c, 60s);
          sequence += set ? 'C' : 'x';
          finished.set();
        });
        a.set();
        this_fiber::wait(finished);  // the test thread parks
        js.wait(done);
        CHECK(sequence == "ABC");
      }
    }
  }

  TEST_CASE(
      "timed waiters complete when the event is set and otherwise time out, never early "
      "(marl EventWaitFor/WaitUntil Unblocked and TimeTaken)") {
    test::Watchdog watchdog("timed event waiters", 120s);
    constexpr int kWaiters = 400;  // half plain jobs (a fiber each), half coroutine jobs
    for (std::uint32_t workers : {1u, 2u, 4u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers, kWaiters)};
      Event open;                      // manual-reset: set once, releases every waiter
      Event never(Event::Mode::Auto);  // never set: every wait times out
      std::atomic<int> completed{0};
      std::atomic<int> timed_out{0};
      std::atomic<int> wrong{0};  // a wait that returned false on `open`, or early on `never`
      Counter done;
      for (int i = 0; i < kWaiters; ++i) {
        const bool use_until = i % 4 < 2;
        if (i % 2 == 0) {
          js.run(done, [&, use_until] {
            const bool set = use_until ? this_fiber::wait_until(open, TimerClock::now() + 60s)
                                       : this_fiber::wait_for(open, 60s);
            (set ? completed : wrong).fetch_add(1);
            const auto start = TimerClock::now();
            const bool got = use_until ? this_fiber::wait_until(never, start + 10ms)
                                       : this_fiber::wait_for(never, 10ms);
            const bool early = TimerClock::now() - start < 10ms;
            (got || early ? wrong : timed_out).fetch_add(1);
          });
        } else {
          js.run(done, [&, use_until](Context& ctx) -> Task<> {
            const bool set = use_until ? co_await ctx.wait_until(open, TimerClock::now() + 60s)
                                       : co_await ctx.wait_for(open, 60s);
            (set ? completed : wrong).fetch_add(1);
            const auto start = TimerClock::now();
            const bool got = use_until ? co_await ctx.wait_until(never, start + 10ms)
                                       : co_await ctx.wait_for(never, 10ms);
            const bool early = TimerClock::now() - start < 10ms;
            (got || early ? wrong : timed_out).fetch_add(1);
          });
        }
      }
      open.set();
      js.wait(done);
      CHECK(completed.load() == kWaiters);
      CHECK(timed_out.load() == kWaiters);
      CHECK(wrong.load() == 0);
      CHECK_FALSE(never.is_set());
    }
  }

  TEST_CASE(
      "two parties step in lock-step through one condition variable (marl ConditionVariable)") {
    test::Watchdog watchdog("cv lock-step", 60s);
    // The peer runs it between two plain threads, then between a thread and a task; here: two
    // plain threads, a plain job and a thread, and a coroutine job and a plain job.
    for (int variant = 0; variant < 3; ++variant) {
      CAPTURE(variant);
      JobSystem js{test::config_with(2)};
      Mutex mutex;
      ConditionVariable cv;
      bool trigger[3] = {false, false, false};  // guarded by mutex
      bool signal[3] = {false, false, false};   // guarded by mutex
      std::atomic<int> wrong{0};
      auto responder = [&] {  // waits for trigger i, answers with signal i
        for (int i = 0; i < 3; ++i) {
          std::unique_lock lock(mutex);
          cv.wait(lock, [&] { return trigger[i]; });
          signal[i] = true;
          cv.notify_one();
        }
      };
      auto caller = [&] {  // sets trigger i, waits for signal i, checks the signals so far
        for (int i = 0; i < 3; ++i) {
          std::unique_lock lock(mutex);
          trigger[i] = true;
          cv.notify_one();
          cv.wait(lock, [&] { return signal[i]; });
          for (int j = 0; j < 3; ++j) wrong.fetch_add(signal[j] != (j <= i) ? 1 : 0);
        }
      };
      Counter done;
      if (variant == 0) {
        std::thread other(responder);
        caller();
        other.join();
      } else if (variant == 1) {
        js.run(done, responder);
        caller();
      } else {
        js.run(done, [&](Context&) -> Task<> {  // the responder as a coroutine
          for (int i = 0; i < 3; ++i) {
            auto guard = co_await mutex.scoped_lock();
            while (!trigger[i]) co_await cv.wait(guard);
            signal[i] = true;
            cv.notify_one();
          }
        });
        js.run(done, caller);
      }
      js.wait(done);
      CHECK(wrong.load() == 0);
      CHECK((signal[0] && signal[1] && signal[2]));
    }
  }
}

TEST_SUITE("ports: Boost.Fiber") {
  TEST_CASE("a unique_lock over a Mutex owns it after lock, not after unlock or defer_lock") {
    // Boost.Fiber's test_lock, on a plain thread and in a plain job.
    JobSystem js{test::config_with(1)};
    auto check = [] {
      Mutex mutex;
      {
        std::unique_lock lock(mutex, std::defer_lock);
        CHECK_FALSE(lock.owns_lock());
      }
      std::unique_lock lock(mutex);
      CHECK(lock.owns_lock());
      lock.unlock();
      CHECK_FALSE(lock);
      lock.lock();
      CHECK(lock);
      CHECK_FALSE(mutex.try_lock());  // held through the lock
    };
    check();
    Counter done;
    js.run(done, check);
    js.wait(done);
  }

  TEST_CASE("a job that suspends holding the mutex keeps the others out (test_exclusive)") {
    test::Watchdog watchdog("mutex exclusive", 60s);
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Mutex mutex;
      Event let_go;
      std::atomic<int> value1{0};
      std::atomic<int> value2{0};
      Counter done;
      js.run(done, [&] {  // the peer's fn1: holds the lock across its suspensions
        std::scoped_lock lock(mutex);
        value1.fetch_add(1);
        this_fiber::yield();
        this_fiber::wait(let_go);
        this_fiber::yield();
      });
      wait_for_value(value1, 1);
      js.run(done, [&] {  // fn2, a plain job: counts, then waits for the lock
        value2.fetch_add(1);
        std::scoped_lock lock(mutex);
        value2.fetch_add(1);
      });
      js.run(done, [&](Context&) -> Task<> {  // fn2 again, as a coroutine
        value2.fetch_add(1);
        auto guard = co_await mutex.scoped_lock();
        value2.fetch_add(1);
      });
      wait_for_value(value2, 2);
      std::this_thread::sleep_for(5ms);
      CHECK(value1.load() == 1);
      CHECK(value2.load() == 2);  // neither got past the lock while the first job held it
      let_go.set();
      js.wait(done);
      CHECK(value1.load() == 1);
      CHECK(value2.load() == 4);
    }
  }

  TEST_CASE("jobs waiting for a mutex a plain thread holds get it once it unlocks (fn17, fn18)") {
    test::Watchdog watchdog("mutex held by a thread", 60s);
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Mutex mutex;
      std::atomic<int> started{0};
      std::atomic<int> got{0};
      mutex.lock();  // the test thread holds it
      Counter done;
      js.run(done, [&] {  // fn17: lock() suspends the fiber until the hand-off
        started.fetch_add(1);
        std::scoped_lock lock(mutex);
        got.fetch_add(1);
      });
      js.run(done, [&](Context& ctx) -> Task<> {  // fn18: try_lock in a loop, yielding
        started.fetch_add(1);
        while (!mutex.try_lock()) co_await ctx.yield();
        got.fetch_add(1);
        mutex.unlock();
      });
      wait_for_value(started, 2);
      std::this_thread::sleep_for(5ms);
      CHECK(got.load() == 0);
      mutex.unlock();
      js.wait(done);
      CHECK(got.load() == 2);
      CHECK(mutex.try_lock());
      mutex.unlock();
    }
  }

  TEST_CASE(
      "notify_one wakes one waiter per call, notify_all every one (test_condition_variable)") {
    test::Watchdog watchdog("cv notify counts", 60s);
    // The peer's test_one_waiter_notify_one, test_two_waiter_notify_one and
    // test_two_waiter_notify_all; waits without a predicate, so each wake-up counts.
    JobSystem js{test::config_with(1)};
    Mutex mutex;
    ConditionVariable cv;
    std::atomic<int> value{0};
    Counter done;
    auto wait_fn = [&] {
      std::unique_lock lock(mutex);
      cv.wait(lock);
      value.fetch_add(1);
    };
    auto settle = [&](int expected) {
      wait_for_value(value, expected);
      std::this_thread::sleep_for(5ms);
      CHECK(value.load() == expected);
    };
    js.run(done, wait_fn);  // one waiter, notify_one
    wait_until_suspended(js, 2);
    cv.notify_one();
    settle(1);
    js.run(done, wait_fn);  // two waiters, two notify_one
    js.run(done, wait_fn);
    wait_until_suspended(js, 3);
    cv.notify_one();
    settle(2);
    cv.notify_one();
    settle(3);
    js.run(done, wait_fn);  // two waiters, notify_all, a third, notify_all
    js.run(done, wait_fn);
    wait_until_suspended(js, 3);
    cv.notify_all();
    settle(5);
    js.run(done, wait_fn);
    wait_until_suspended(js, 2);
    cv.notify_all();
    settle(6);
    js.wait(done);
  }

  TEST_CASE(
      "each side waits for the other's flag on one condition variable (test_condition_wait)") {
    test::Watchdog watchdog("cv handshake", 60s);
    // The peer runs it inside a fiber and on the main thread: here a plain job and the test
    // thread, two plain jobs, and a coroutine job with a plain job.
    for (int variant = 0; variant < 3; ++variant) {
      CAPTURE(variant);
      JobSystem js{test::config_with(2)};
      Mutex mutex;
      ConditionVariable cv;
      int test1 = 0;  // guarded by mutex
      int test2 = 0;  // guarded by mutex
      std::atomic<int> wrong{0};
      Counter done;
      auto fn1 = [&] {
        std::unique_lock lock(mutex);
        wrong.fetch_add(test2 != 0 ? 1 : 0);
        test1 = 1;
        cv.notify_one();
        while (test2 == 0) cv.wait(lock);
      };
      auto main_side = [&] {
        std::unique_lock lock(mutex);
        while (test1 == 0) cv.wait(lock);
        test2 = 1;
        lock.unlock();
        cv.notify_one();
      };
      if (variant == 0) {
        js.run(done, fn1);
        main_side();
      } else if (variant == 1) {
        js.run(done, main_side);
        js.run(done, fn1);
      } else {
        js.run(done, [&](Context&) -> Task<> {  // fn1 as a coroutine
          auto guard = co_await mutex.scoped_lock();
          wrong.fetch_add(test2 != 0 ? 1 : 0);
          test1 = 1;
          cv.notify_one();
          while (test2 == 0) co_await cv.wait(guard);
        });
        js.run(done, main_side);
      }
      js.wait(done);
      CHECK(wrong.load() == 0);
      CHECK(test1 == 1);
      CHECK(test2 == 1);
    }
  }
}

TEST_SUITE("ports: FiberTaskingLib") {
  TEST_CASE("fibtex: rounds of six jobs append under the mutex, every entry in order") {
    test::Watchdog watchdog("fibtex", 120s);
    // FiberTaskingLib's fibtex locking test: each round adds six tasks that take the lock
    // through std::lock_guard, append `counter++` to a vector and leave, then waits for them.
    // Two take it with lock() (the fiber suspends), two with a bounded try_lock spin before
    // lock() (the peer's Spin behaviour), two as coroutines (co_await scoped_lock()).
    constexpr int kRounds = 300;
    for (std::uint32_t workers : {1u, 2u, 4u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Mutex mutex;
      unsigned counter = 0;         // guarded by mutex
      std::vector<unsigned> queue;  // guarded by mutex
      queue.reserve(6 * kRounds);
      auto append = [&] { queue.push_back(counter++); };
      for (int round = 0; round < kRounds; ++round) {
        Counter done;
        for (int k = 0; k < 2; ++k) {
          js.run(done, [&] {
            std::lock_guard lock(mutex);
            append();
          });
          js.run(done, [&] {
            bool held = false;
            for (int spin = 0; spin < 100 && !held; ++spin) held = mutex.try_lock();
            if (!held) mutex.lock();
            std::lock_guard lock(mutex, std::adopt_lock);
            append();
          });
          js.run(done, [&](Context&) -> Task<> {
            auto guard = co_await mutex.scoped_lock();
            append();
          });
        }
        js.wait(done);
      }
      REQUIRE(counter == 6 * kRounds);
      REQUIRE(queue.size() == 6 * kRounds);
      int out_of_order = 0;
      for (unsigned i = 0; i < counter; ++i) out_of_order += queue[i] != i ? 1 : 0;
      CHECK(out_of_order == 0);
    }
  }
}
