// Counter: manual units, thread waiters, reuse, misuse.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

TEST_SUITE("counter") {
  TEST_CASE("a new counter is done; add and signal move it") {
    Counter counter;
    CHECK(counter.done());
    counter.add(2);
    CHECK(counter.pending() == 2);
    counter.signal();
    CHECK_FALSE(counter.done());
    counter.signal();
    CHECK(counter.done());
  }

  TEST_CASE("adding a non-positive amount throws CounterMisuse") {
    Counter counter;
    CHECK_THROWS_AS(counter.add(0), Error);
    try {
      counter.add(-3);
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::CounterMisuse);
    }
    CHECK(counter.done());
  }

  TEST_CASE("waiting on a done counter returns at once, from a thread and from a job") {
    JobSystem js{test::config_with(2)};
    Counter idle;
    js.wait(idle);
    const auto before = js.stats().fiber_switches;
    Counter done;
    js.run(done, [&idle] { this_fiber::wait(idle); });
    js.wait(done);
    CHECK(js.stats().fiber_switches == before);  // no suspension, so no switch
  }

  TEST_CASE("units added while the final signaller drains never make a second drainer") {
    // Two threads each add a unit and remove it, so the count keeps touching zero and passing
    // through the drain while the other adds: a signal that takes "drain + 1" back to "drain"
    // must not think it is the final one (that drained twice and corrupted the count).
    test::Watchdog watchdog("add during drain", 60s);
    Counter counter;
    std::atomic<bool> go{false};
    auto hammer = [&] {
      while (!go.load()) {
      }
      for (int i = 0; i < 1'000'000; ++i) {
        counter.add(1);
        counter.signal();
      }
    };
    std::thread a(hammer);
    std::thread b(hammer);
    go.store(true);
    a.join();
    b.join();
    CHECK(counter.pending() == 0);
    CHECK(counter.done());
  }

  TEST_CASE("many plain threads waiting on one counter all wake on the last signal") {
    test::Watchdog watchdog("thread waiters", 60s);
    JobSystem js{test::config_with(2)};
    for (int round = 0; round < 50; ++round) {
      Counter gate;
      gate.add(1);
      std::atomic<int> woke{0};
      std::vector<std::thread> threads;
      for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
          js.wait(gate);
          woke.fetch_add(1);
        });
      }
      Counter done;
      js.run(done, [&gate] { gate.signal(); });  // the last unit is removed by a job
      js.wait(done);
      for (auto& t : threads) t.join();
      CHECK(woke.load() == 4);
    }
  }

  TEST_CASE("fiber and thread waiters on one counter are all woken once") {
    test::Watchdog watchdog("mixed waiters", 60s);
    JobSystem js{test::config_with(4)};
    Counter gate;
    gate.add(1);
    std::atomic<int> fibers_woken{0};
    Counter fibers_done;
    for (int i = 0; i < 32; ++i) {
      js.run(fibers_done, [&] {
        this_fiber::wait(gate);
        fibers_woken.fetch_add(1);
      });
    }
    std::atomic<int> threads_woken{0};
    std::thread thread([&] {
      js.wait(gate);
      threads_woken.fetch_add(1);
    });
    std::this_thread::sleep_for(5ms);
    gate.signal();  // from a plain thread: fibers go to the injector in bulk
    js.wait(fibers_done);
    thread.join();
    CHECK(fibers_woken.load() == 32);
    CHECK(threads_woken.load() == 1);
  }
}
