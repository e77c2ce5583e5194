// No lost wake-up: submit work exactly as the workers go idle and park, 100,000 times. A lost
// wake-up shows as a hang, which the watchdog turns into a failure.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

TEST_SUITE("lost_wakeup") {
  TEST_CASE("100,000 submissions racing with workers going to sleep all complete") {
    test::Watchdog watchdog("lost wake-up hammer", 600s);
    for (std::uint32_t workers : {1u, 2u, 4u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::mt19937 random(12345 + workers);
      std::uniform_int_distribution<int> pause_us(0, 60);
      std::atomic<long> ran{0};
      const long kRounds = workers == 1 ? 100'000 : 40'000;
      for (long round = 0; round < kRounds; ++round) {
        Counter done;
        js.run(done, [&ran] { ran.fetch_add(1, std::memory_order_relaxed); });
        js.wait(done);
        // Vary the gap so the next submission lands at every point of the idle path:
        // spinning, announcing, re-checking, sleeping.
        const int us = pause_us(random);
        if (us > 40) std::this_thread::sleep_for(std::chrono::microseconds(us - 40));
      }
      CHECK(ran.load() == kRounds);
      CHECK(js.stats().parks > 0);  // the workers really did go to sleep
    }
  }

  TEST_CASE("jobs that wake parked workers from inside the pool never strand work") {
    test::Watchdog watchdog("worker-to-worker wake", 600s);
    JobSystem js{test::config_with(4)};
    for (int round = 0; round < 20'000; ++round) {
      std::atomic<int> ran{0};
      Counter done;
      js.run(done, [&ran](Context& ctx) {
        Counter children;
        for (int i = 0; i < 3; ++i) ctx.spawn(children, [&ran] { ran.fetch_add(1); });
        this_fiber::wait(children);
      });
      js.wait(done);
      REQUIRE(ran.load() == 3);
    }
  }
}
