// Event: manual-reset and auto-reset (ports, in spirit, of marl's event tests: signalled state,
// auto and manual modes, many waiters), waited on by plain jobs (this_fiber::wait), coroutine
// jobs and foreign coroutines (co_await), and plain threads (parked).

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <functional>
#include <stdexcept>
#include <thread>
#include <vector>

#include "support/config.hpp"
#include "support/detached.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

test::Detached foreign_wait(Event& event, std::atomic<int>& woken) {
  co_await event;
  woken.fetch_add(1);
}

/// Waits until `count` fibers are in use: the jobs started and (after a moment) suspended.
void wait_until_suspended(JobSystem& js, std::size_t fibers) {
  while (js.stats().fibers_in_use < fibers) std::this_thread::yield();
  std::this_thread::sleep_for(10ms);  // let the last links complete (they are asynchronous)
}

}  // namespace

TEST_SUITE("event") {
  TEST_CASE(
      "a manual-reset event starts reset, stays set until reset, and try_wait does not "
      "consume it") {
    Event event;
    CHECK_FALSE(event.is_set());
    CHECK_FALSE(event.try_wait());
    event.set();
    CHECK(event.is_set());
    CHECK(event.try_wait());
    CHECK(event.try_wait());
    event.set();  // idempotent
    event.reset();
    CHECK_FALSE(event.is_set());
    event.reset();  // idempotent
    CHECK_FALSE(event.is_set());
    Event initially(Event::Mode::Manual, true);
    CHECK(initially.is_set());
  }

  TEST_CASE("an auto-reset event lets one try_wait through per set, and sets do not add up") {
    Event event(Event::Mode::Auto);
    CHECK_FALSE(event.try_wait());
    event.set();
    event.set();  // already set: not counted
    CHECK(event.is_set());
    CHECK(event.try_wait());
    CHECK_FALSE(event.is_set());
    CHECK_FALSE(event.try_wait());
  }

  TEST_CASE("set wakes every plain, coroutine and foreign waiter of a manual-reset event") {
    test::Watchdog watchdog("manual event wakes all", 60s);
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Event event;
      std::atomic<int> woken{0};
      Counter done;
      for (int i = 0; i < 8; ++i) {
        js.run(done, [&] {
          this_fiber::wait(event);
          woken.fetch_add(1);
        });
        js.run(done, [&](Context&) -> Task<> {
          co_await event;
          woken.fetch_add(1);
        });
      }
      foreign_wait(event, woken);  // suspends on this plain thread
      std::thread parked([&] {
        this_fiber::wait(event);  // a plain thread parks
        woken.fetch_add(1);
      });
      std::this_thread::sleep_for(5ms);
      CHECK(woken.load() == 0);
      event.set();
      js.wait(done);
      parked.join();
      // The foreign coroutine resumed on a worker (the setter's) or inline here.
      while (woken.load() != 18) std::this_thread::yield();
      CHECK(woken.load() == 18);
      // Stays set: a later wait returns at once.
      this_fiber::wait(event);
    }
  }

  TEST_CASE("a wait at any call depth in a plain job suspends the fiber, not the worker") {
    test::Watchdog watchdog("nested wait", 60s);
    JobSystem js{test::config_with(1)};
    Event event;
    std::atomic<bool> resumed{false};
    Counter done;
    std::function<void(int)> nest = [&](int depth) {
      if (depth == 0) {
        this_fiber::wait(event);
        resumed = true;
        return;
      }
      nest(depth - 1);
    };
    js.run(done, [&] { nest(20); });
    // One worker: the setter job runs only if the waiter gave the worker back.
    js.run(done, [&] { event.set(); });
    js.wait(done);
    CHECK(resumed.load());
  }

  TEST_CASE("an auto-reset set wakes exactly one waiter, oldest first") {
    test::Watchdog watchdog("auto event one per set", 60s);
    JobSystem js{test::config_with(1)};
    Event event(Event::Mode::Auto);
    std::vector<int> order;
    Counter done;
    for (int i = 0; i < 4; ++i) {
      js.run(done, [&, i] {
        this_fiber::wait(event);
        order.push_back(i);
      });
      wait_until_suspended(js, static_cast<std::size_t>(2 + i));  // link in this order
    }
    for (int round = 1; round <= 4; ++round) {
      event.set();
      while (order.size() < static_cast<std::size_t>(round)) std::this_thread::yield();
      std::this_thread::sleep_for(5ms);
      CHECK(order.size() == static_cast<std::size_t>(round));  // exactly one per set
      CHECK_FALSE(event.is_set());                             // consumed by the waiter
    }
    js.wait(done);
    CHECK(order == std::vector<int>{0, 1, 2, 3});
  }

  TEST_CASE("a set before the wait is kept for the next waiter of an auto-reset event") {
    JobSystem js{test::config_with(2)};
    Event event(Event::Mode::Auto);
    event.set();
    Counter done;
    js.run(done, [&](Context&) -> Task<> { co_await event; });
    js.wait(done);
    CHECK_FALSE(event.is_set());
  }

  TEST_CASE("a waiter may destroy the event as soon as its wait returns") {
    test::Watchdog watchdog("event lifetime", 60s);
    JobSystem js{test::config_with(2)};
    for (int i = 0; i < 2000; ++i) {
      auto* event = new Event(i % 2 == 0 ? Event::Mode::Manual : Event::Mode::Auto);
      Counter done;
      js.run(done, [event] {
        this_fiber::wait(*event);
        delete event;
      });
      js.run(done, [event] { event->set(); });
      js.wait(done);
    }
  }
}

TEST_SUITE("wait for a value") {
  TEST_CASE("this_fiber::wait(counter, target) resumes once the count is at or below target") {
    test::Watchdog watchdog("wait for value", 60s);
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Counter work;
      work.add(10);
      std::atomic<std::int64_t> seen_at_3{-1};
      std::atomic<std::int64_t> seen_at_7{-1};
      Counter done;
      js.run(done, [&] {
        this_fiber::wait(work, 3);
        seen_at_3 = work.pending();
      });
      js.run(done, [&](Context& ctx) -> Task<> {
        co_await ctx.wait(work, 7);
        seen_at_7 = work.pending();
      });
      std::this_thread::sleep_for(2ms);
      for (int i = 0; i < 10; ++i) {
        if (i < 3) CHECK(seen_at_7.load() == -1);
        if (i < 7) CHECK(seen_at_3.load() == -1);
        work.signal();
      }
      js.wait(done);
      CHECK(seen_at_3.load() <= 3);
      CHECK(seen_at_7.load() <= 7);
      CHECK(work.done());
    }
  }

  TEST_CASE("waiters with several targets at once each resume when their target is met") {
    test::Watchdog watchdog("several targets", 60s);
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      constexpr int kUnits = 64;
      Counter work;
      work.add(kUnits);
      std::atomic<int> too_early{0};
      std::atomic<int> resumed{0};
      Counter done;
      for (int target = 0; target < kUnits; ++target) {
        // Each waiter records the count it saw: never above its target.
        js.run(done, [&, target] {
          this_fiber::wait(work, target);
          if (work.pending() > target) too_early.fetch_add(1);
          resumed.fetch_add(1);
        });
        js.run(done, [&, target](Context& ctx) -> Task<> {
          co_await ctx.wait(work, target);
          if (work.pending() > target) too_early.fetch_add(1);
          resumed.fetch_add(1);
        });
      }
      std::thread thread_waiter([&] { this_fiber::wait(work, kUnits / 2); });
      // Units done by jobs, concurrently with the waits linking.
      Counter workers_done;
      for (int i = 0; i < kUnits; ++i) js.run(workers_done, [&] { work.signal(); });
      js.wait(workers_done);
      js.wait(done);
      thread_waiter.join();
      CHECK(too_early.load() == 0);
      CHECK(resumed.load() == 2 * kUnits);
      CHECK(work.done());
    }
  }

  TEST_CASE("a target already met does not suspend, and a negative target is an error") {
    JobSystem js{test::config_with(1)};
    Counter work;
    work.add(2);
    Counter done;
    std::atomic<int> errors{0};
    js.run(done, [&](Context& ctx) -> Task<> {
      co_await ctx.wait(work, 2);  // met: 2 <= 2
      this_fiber::wait(work, 5);
      try {
        co_await ctx.wait(work, -1);
      } catch (const Error& error) {
        if (error.code() == ErrorCode::CounterMisuse) errors.fetch_add(1);
      }
      try {
        this_fiber::wait(work, -1);
      } catch (const Error& error) {
        if (error.code() == ErrorCode::CounterMisuse) errors.fetch_add(1);
      }
    });
    js.wait(done);
    CHECK(errors.load() == 2);
    work.signal();
    work.signal();
  }

  TEST_CASE("this_fiber::wait(counter, 0) on a plain thread parks it and rethrows") {
    test::Watchdog watchdog("value wait for zero on a thread", 60s);
    JobSystem js{test::config_with(2)};
    Counter work;
    Event go;
    std::atomic<bool> ran{false};
    js.run(work, [&] {
      this_fiber::wait(go);
      ran.store(true);
      throw std::runtime_error("from the job");
    });
    std::thread setter([&] {
      std::this_thread::sleep_for(5ms);
      go.set();
    });
    CHECK_THROWS_AS(this_fiber::wait(work, 0), std::runtime_error);  // no NotOnFiber
    CHECK(ran.load());
    CHECK(work.pending() == 0);
    setter.join();
  }

  TEST_CASE("a counter with value waiters keeps counting adds and reuse") {
    test::Watchdog watchdog("value wait with adds", 60s);
    JobSystem js{test::config_with(2)};
    Counter work;
    for (int round = 0; round < 200; ++round) {
      work.add(4);
      Counter done;
      js.run(done, [&] { this_fiber::wait(work, 2); });
      js.run(done, [&] {
        work.add(2);  // adds while the value waiter may be linking
        for (int i = 0; i < 6; ++i) work.signal();
      });
      js.wait(done);
      CHECK(work.pending() == 0);
      js.wait(work);
    }
  }
}
