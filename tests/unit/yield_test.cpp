// Yield: rescheduled behind other ready work (the worker's FIFO yield queue); a lone job keeps
// running. Also the worker's "next" slot: a woken fiber waits there, not behind a long job.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <mutex>
#include <vector>

#include "support/config.hpp"
#include "support/spin.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

TEST_SUITE("yield") {
  TEST_CASE("two yielding jobs on one worker interleave") {
    test::Watchdog watchdog("two yielding jobs", 60s);
    JobSystem js{test::config_with(1)};
    constexpr int kRounds = 200;
    std::mutex mutex;
    std::vector<int> trace;
    Counter gate;
    gate.add(1);  // both jobs start together, released by the gate
    Counter done;
    for (int id = 0; id < 2; ++id) {
      js.run(done, [&, id] {
        this_fiber::wait(gate);
        for (int i = 0; i < kRounds; ++i) {
          {
            std::lock_guard lock(mutex);
            trace.push_back(id);
          }
          this_fiber::yield();
        }
      });
    }
    while (js.stats().fibers_in_use < 3) std::this_thread::yield();  // both parked on the gate
    gate.signal();
    js.wait(done);
    REQUIRE(trace.size() == 2 * kRounds);
    int alternations = 0;
    for (std::size_t i = 1; i < trace.size(); ++i) alternations += trace[i] != trace[i - 1];
    // Strict alternation gives 2 * kRounds - 1; allow the first round to start either way.
    CHECK(alternations >= 2 * kRounds - 2);
  }

  TEST_CASE("a lone job yielding 100,000 times finishes") {
    test::Watchdog watchdog("lone yield", 60s);
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      int yields = 0;
      Counter done;
      js.run(done, [&yields] {
        for (int i = 0; i < 100'000; ++i) {
          this_fiber::yield();
          ++yields;
        }
      });
      js.wait(done);
      CHECK(yields == 100'000);
    }
  }

  TEST_CASE("a woken fiber does not wait behind the long job that woke it") {
    // The waker puts the fiber in its worker's next slot, then keeps the worker busy until the
    // fiber has run. Only the idle second worker can run it: it must take it from the slot.
    test::Watchdog watchdog("next slot taken by an idle worker", 60s);
    JobSystem js{test::config_with(2)};
    for (int round = 0; round < 20; ++round) {
      CAPTURE(round);
      std::atomic<bool> woken_ran{false};
      Counter event;
      event.add(1);
      Counter done;
      js.run(done, [&] {
        this_fiber::wait(event);
        woken_ran.store(true);
      });
      while (js.stats().fibers_in_use < 3) std::this_thread::yield();  // the waiter is parked
      js.run(done, [&] {
        event.signal();  // from a job: the waiter goes to this worker's next slot
        test::spin_until(woken_ran, 30s);
      });
      js.wait(done);
      REQUIRE(woken_ran.load());
    }
  }

  TEST_CASE("yielding jobs on two workers all finish") {
    // Four jobs yield 10,000 times each while the two workers steal them from each other's
    // deques and yield queues: nothing is stranded in a yield queue.
    test::Watchdog watchdog("yield queue stealing", 60s);
    JobSystem js{test::config_with(2)};
    std::atomic<int> finished{0};
    Counter done;
    js.run(done, [&](Context& ctx) {
      Counter players;
      for (int i = 0; i < 4; ++i) {
        ctx.spawn(players, [&finished] {
          for (int k = 0; k < 10'000; ++k) this_fiber::yield();
          finished.fetch_add(1);
        });
      }
      this_fiber::wait(players);
    });
    js.wait(done);
    CHECK(finished.load() == 4);
  }

  TEST_CASE("a yield lets a queued job run before the yielding job continues") {
    test::Watchdog watchdog("yield order", 60s);
    JobSystem js{test::config_with(1)};
    std::atomic<bool> other_ran{false};
    bool seen_after_yield = false;
    Counter done;
    js.run(done, [&](Context& ctx) {
      Counter other;
      ctx.spawn(other, [&other_ran] { other_ran.store(true); });
      this_fiber::yield();  // the spawned job is ready: it runs first
      seen_after_yield = other_ran.load();
      this_fiber::wait(other);
    });
    js.wait(done);
    CHECK(seen_after_yield);
  }
}
