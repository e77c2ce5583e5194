// Fibers migrate: a job that waits may resume on another worker, and then sees that worker.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "support/config.hpp"
#include "support/spin.hpp"
#include "support/thread_id.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

TEST_SUITE("migration") {
  TEST_CASE("a job resumed on another worker sees the right worker_index") {
    test::Watchdog watchdog("migration", 120s);
    constexpr std::uint32_t kWorkers = 2;
    JobSystem js{test::config_with(kWorkers)};

    // Learn which thread each worker index runs on.
    std::mutex mutex;
    std::vector<std::thread::id> thread_of(kWorkers);
    std::atomic<int> known{0};
    while (known.load() < static_cast<int>(kWorkers)) {
      Counter probe;
      std::atomic<bool> release{false};
      for (std::uint32_t i = 0; i < kWorkers; ++i) {
        js.run(probe, [&](Context& ctx) {
          {
            std::lock_guard lock(mutex);
            auto& slot = thread_of[ctx.worker_index()];
            if (slot == std::thread::id{}) {
              slot = test::current_thread_id();
              known.fetch_add(1);
            }
          }
          // Hold the worker briefly so the other job lands on the other worker.
          test::spin_until(release, 2ms);
        });
      }
      js.wait(probe);
    }

    int migrations = 0;
    int mismatches = 0;
    for (int round = 0; round < 200 && migrations < 20; ++round) {
      Counter gate;
      gate.add(1);
      std::atomic<bool> resumed{false};
      std::atomic<bool> waiting{false};
      std::size_t before = 0;
      std::size_t after = 0;
      std::thread::id after_thread;
      Counter done;
      js.run(done, [&](Context& ctx) {
        before = ctx.worker_index();
        Counter blocker;
        // Occupies this worker while we wait, so the resumption goes to the other one.
        ctx.spawn(blocker, [&] { test::spin_until(resumed, 500ms); });
        waiting.store(true);
        this_fiber::wait(gate);
        after = ctx.worker_index();
        after_thread = test::current_thread_id();
        resumed.store(true);
        this_fiber::wait(blocker);
      });
      while (!waiting.load()) std::this_thread::yield();
      std::this_thread::sleep_for(100us);  // let the blocker start
      gate.signal();
      js.wait(done);
      migrations += after != before;
      mismatches += thread_of[after] != after_thread;
    }
    CHECK(migrations > 0);
    CHECK(mismatches == 0);
  }
}
