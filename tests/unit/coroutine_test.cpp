// Coroutine jobs: Task<>, co_await ctx.wait / ctx.yield / a counter / a child Task, exceptions,
// and the coroutine resuming on another worker.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/config.hpp"
#include "support/spin.hpp"
#include "support/thread_id.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

Task<int> doubled(int x) { co_return x * 2; }

Task<int> failing_child() {
  throw std::runtime_error("child failed");
  co_return 0;
}

Task<long> fib_task(Context& ctx, int n) {
  if (n < 2) co_return n;
  long a = 0;
  long b = 0;
  Counter children;
  ctx.spawn(children, [&a, n](Context& c) -> Task<> { a = co_await fib_task(c, n - 1); });
  ctx.spawn(children, [&b, n](Context& c) -> Task<> { b = co_await fib_task(c, n - 2); });
  co_await ctx.wait(children);
  co_return a + b;
}

}  // namespace

TEST_SUITE("coroutines") {
  TEST_CASE("coroutine jobs that wait and yield compute fib across worker counts") {
    test::Watchdog watchdog("coroutine fib", 120s);
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      long result = 0;
      Counter done;
      js.run(done, [&result](Context& ctx) -> Task<> {
        co_await ctx.yield();
        result = co_await fib_task(ctx, 15);
        co_await ctx.yield();
      });
      js.wait(done);
      CHECK(result == 610);
      CHECK(js.stats().fibers_in_use == workers);
    }
  }

  TEST_CASE("a suspended coroutine job holds no fiber: 2,000 waiters on a pool of 8 fibers") {
    // co_await ctx.wait and co_await ctx.yield suspend the coroutine, not the fiber: the fiber
    // goes on with other jobs and any worker resumes the coroutine inline. So 2,000 coroutine
    // jobs can wait at once with 8 fibers, without exhausting the pool or switching fibers.
    test::Watchdog watchdog("stackless coroutine waits", 60s);
    Config config = test::config_with(2);
    config.fiber_count = 8;
    JobSystem js{config};
    constexpr int kWaiters = 2'000;
    Counter gate;
    gate.add(1);
    std::atomic<int> before{0};
    std::atomic<int> after{0};
    Counter done;
    for (int i = 0; i < kWaiters; ++i) {
      js.run(done, [&](Context& ctx) -> Task<> {
        before.fetch_add(1);
        co_await ctx.wait(gate);
        co_await ctx.yield();
        after.fetch_add(1);
      });
    }
    while (before.load() < kWaiters) std::this_thread::yield();
    CHECK(after.load() == 0);
    CHECK(js.stats().coroutine_jobs_alive == kWaiters);  // none holds a fiber, all are counted
    gate.signal();
    js.wait(done);
    CHECK(after.load() == kWaiters);
    const Stats stats = js.stats();
    CHECK(stats.coroutine_jobs_alive == 0);
    CHECK(stats.pool_exhausted == 0);
    CHECK(stats.fiber_switches == 0);
    CHECK(stats.fibers_in_use_high_water <= 2);
  }

  TEST_CASE("a child Task returns its value to the parent's co_await") {
    JobSystem js{test::config_with(2)};
    int value = 0;
    Counter done;
    js.run(done, [&value]() -> Task<> { value = co_await doubled(21); });
    js.wait(done);
    CHECK(value == 42);
  }

  TEST_CASE("an exception from a child Task reaches the parent's co_await") {
    JobSystem js{test::config_with(2)};
    std::string caught;
    Counter done;
    js.run(done, [&caught]() -> Task<> {
      try {
        co_await failing_child();
      } catch (const std::runtime_error& e) {
        caught = e.what();
      }
    });
    js.wait(done);
    CHECK(caught == "child failed");
  }

  TEST_CASE("an exception thrown in a coroutine job reaches the waiter") {
    test::Watchdog watchdog("coroutine job exception", 60s);
    JobSystem js{test::config_with(2)};
    Counter done;
    js.run(done, [](Context& ctx) -> Task<> {
      Counter inner;
      ctx.spawn(inner, [] {});
      co_await ctx.wait(inner);
      throw std::logic_error("coroutine job failed");
    });
    CHECK_THROWS_WITH_AS(js.wait(done), "coroutine job failed", std::logic_error);
    // And a coroutine waiting on a counter whose plain job threw gets it at its co_await.
    std::string seen;
    Counter second;
    js.run(second, [&seen](Context& ctx) -> Task<> {
      Counter inner;
      ctx.spawn(inner, [] { throw std::runtime_error("plain child failed"); });
      try {
        co_await ctx.wait(inner);
      } catch (const std::runtime_error& e) {
        seen = e.what();
      }
    });
    js.wait(second);
    CHECK(seen == "plain child failed");
  }

  TEST_CASE("co_await on a counter that is already zero does not switch") {
    JobSystem js{test::config_with(2)};
    Counter idle;
    const auto before = js.stats().fiber_switches;
    Counter done;
    js.run(done, [&idle](Context& ctx) -> Task<> {
      for (int i = 0; i < 100; ++i) {
        co_await ctx.wait(idle);
        co_await idle;  // the counter itself is awaitable
      }
    });
    js.wait(done);
    CHECK(js.stats().fiber_switches == before);
  }

  TEST_CASE("plain and coroutine jobs share one counter and one wait list") {
    test::Watchdog watchdog("mixed jobs", 60s);
    JobSystem js{test::config_with(4)};
    Counter gate;
    gate.add(1);
    std::atomic<int> woken{0};
    Counter done;
    for (int i = 0; i < 50; ++i) {
      js.run(done, [&] {
        this_fiber::wait(gate);
        woken.fetch_add(1);
      });
      js.run(done, [&](Context& ctx) -> Task<> {
        co_await ctx.wait(gate);
        woken.fetch_add(1);
      });
    }
    std::this_thread::sleep_for(5ms);
    gate.signal();
    js.wait(done);
    CHECK(woken.load() == 100);
  }

  TEST_CASE("a coroutine job resumed on another worker sees the right worker_index") {
    test::Watchdog watchdog("coroutine migration", 120s);
    JobSystem js{test::config_with(2)};
    std::mutex mutex;
    std::vector<std::pair<std::size_t, std::thread::id>> seen;  // (index, thread) pairs
    int migrations = 0;
    for (int round = 0; round < 200 && migrations < 10; ++round) {
      Counter gate;
      gate.add(1);
      std::atomic<bool> resumed{false};
      std::atomic<bool> waiting{false};
      std::size_t before = 0;
      std::size_t after = 0;
      Counter done;
      js.run(done, [&](Context& ctx) -> Task<> {
        before = ctx.worker_index();
        Counter blocker;
        ctx.spawn(blocker, [&] {  // keeps this worker busy while we wait
          test::spin_until(resumed, 500ms);
        });
        waiting.store(true);
        co_await ctx.wait(gate);
        after = ctx.worker_index();
        {
          std::lock_guard lock(mutex);
          seen.emplace_back(after, test::current_thread_id());
        }
        resumed.store(true);
        co_await ctx.wait(blocker);
      });
      while (!waiting.load()) std::this_thread::yield();
      std::this_thread::sleep_for(100us);
      gate.signal();
      js.wait(done);
      migrations += after != before;
    }
    CHECK(migrations > 0);
    // One worker index never shows up on two threads.
    std::vector<std::thread::id> thread_of(2);
    int conflicts = 0;
    for (auto [index, id] : seen) {
      REQUIRE(index < 2);
      if (thread_of[index] == std::thread::id{}) thread_of[index] = id;
      conflicts += thread_of[index] != id;
    }
    CHECK(conflicts == 0);
  }
}
