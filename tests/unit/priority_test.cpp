// Priorities: High work is taken before Normal before Low.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <vector>

#include "support/config.hpp"
#include "support/spin.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

TEST_SUITE("priority") {
  TEST_CASE("jobs queued from a plain thread run High, then Normal, then Low") {
    test::Watchdog watchdog("injector priorities", 60s);
    JobSystem js{test::config_with(1)};
    std::atomic<bool> queued{false};
    std::atomic<bool> holding{false};
    std::mutex mutex;
    std::vector<Priority> order;
    Counter done;
    // Occupy the only worker until the three jobs are queued.
    js.run(done, [&] {
      holding.store(true);
      test::spin_until(queued, 10s);
    });
    while (!holding.load()) std::this_thread::yield();
    for (Priority p : {Priority::Low, Priority::Normal, Priority::High}) {
      js.run(
          done,
          [&, p] {
            std::lock_guard lock(mutex);
            order.push_back(p);
          },
          p);
    }
    queued.store(true);
    js.wait(done);
    CHECK(order == std::vector<Priority>{Priority::High, Priority::Normal, Priority::Low});
  }

  TEST_CASE("jobs spawned onto a worker's own deque run High, then Normal, then Low") {
    test::Watchdog watchdog("deque priorities", 60s);
    JobSystem js{test::config_with(1)};
    std::vector<Priority> order;  // one worker: jobs never overlap
    Counter done;
    js.run(done, [&order](Context& ctx) {
      Counter children;
      for (Priority p : {Priority::Low, Priority::Normal, Priority::High, Priority::Low}) {
        ctx.spawn(
            children, [&order, p] { order.push_back(p); }, p);
      }
      this_fiber::wait(children);
    });
    js.wait(done);
    CHECK(order ==
          std::vector<Priority>{Priority::High, Priority::Normal, Priority::Low, Priority::Low});
  }
}
