// co_await ctx.wait(counter) runs the awaiting coroutine's own children inline first (bounded by
// stack headroom), and its frames come from recycling pools: depth, exceptions, and children
// that suspend their fiber while the parent coroutine is mid-await.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

/// Coroutine spawn-and-co_await nested `depth` levels deep, each level a coroutine job.
Task<> nest(Context& ctx, int depth, std::atomic<int>& deepest) {
  if (depth == 0) {
    deepest.fetch_add(1);
    co_return;
  }
  Counter child;
  ctx.spawn(child, [&deepest, depth](Context& c) { return nest(c, depth - 1, deepest); });
  co_await ctx.wait(child);
}

Task<std::int64_t> fib(Context& ctx, int n) {
  if (n < 2) co_return n;
  std::int64_t a = 0;
  std::int64_t b = 0;
  Counter children;
  ctx.spawn(children, [&a, n](Context& c) -> Task<> { a = co_await fib(c, n - 1); });
  ctx.spawn(children, [&b, n](Context& c) -> Task<> { b = co_await fib(c, n - 2); });
  co_await ctx.wait(children);
  co_return a + b;
}

}  // namespace

TEST_SUITE("coroutine_work_first") {
  TEST_CASE("coroutine spawn-and-co_await nests 100,000 deep with the default Config") {
    test::Watchdog watchdog("coroutine nesting 100,000 deep", 300s);
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      Config config;
      config.worker_count = workers;
      JobSystem js{config};
      std::atomic<int> deepest{0};
      Counter done;
      js.run(done, [&deepest](Context& ctx) { return nest(ctx, 100000, deepest); });
      js.wait(done);
      CHECK(deepest.load() == 1);
      // Suspended coroutines hold no fiber: the pool never grew.
      CHECK(js.stats().fibers_created == config.fiber_count);
    }
  }

  TEST_CASE("coroutine fib gives the right value and, on one worker, switches no fiber") {
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::int64_t result = 0;
      Counter done;
      js.run(done, [&result](Context& ctx) -> Task<> { result = co_await fib(ctx, 20); });
      js.wait(done);
      CHECK(result == 6765);
      if (workers == 1) CHECK(js.stats().fiber_switches == 0);
    }
  }

  TEST_CASE("a child run inline that throws delivers its exception at the parent's co_await") {
    JobSystem js{test::config_with(1)};
    bool caught = false;
    int others = 0;
    Counter done;
    js.run(done, [&](Context& ctx) -> Task<> {
      Counter children;
      ctx.spawn(children, [&others] { ++others; });
      ctx.spawn(children, [] { throw std::runtime_error("child"); });
      ctx.spawn(children, [&others] { ++others; });
      try {
        co_await ctx.wait(children);
      } catch (const std::runtime_error& error) {
        caught = std::string(error.what()) == "child";
      }
    });
    js.wait(done);
    CHECK(caught);
    CHECK(others == 2);  // every child ran before the wait completed
  }

  TEST_CASE("a plain child run inline may suspend its fiber while the parent coroutine waits") {
    test::Watchdog watchdog("inline child suspends", 60s);
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers, 4)};
      for (int round = 0; round < 200; ++round) {
        Counter gate;
        gate.add(1);
        std::atomic<int> order{0};
        int child_saw = -1;
        int opener_saw = -1;
        Counter done;
        js.run(done, [&](Context& ctx) -> Task<> {
          Counter opener;  // spawned first: below the child on the deque
          ctx.spawn(opener, [&] {
            opener_saw = order.fetch_add(1);
            gate.signal();
          });
          Counter children;
          ctx.spawn(children, [&] {
            this_fiber::wait(gate);  // suspends the fiber under the parent's await_suspend
            child_saw = order.fetch_add(1);
          });
          co_await ctx.wait(children);
          co_await ctx.wait(opener);
        });
        js.wait(done);
        CHECK(opener_saw == 0);
        CHECK(child_saw == 1);
      }
    }
  }

  TEST_CASE("many coroutine fork-joins on several workers give the serial result") {
    test::Watchdog watchdog("coroutine fork-join stress", 120s);
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::vector<std::int64_t> results(16, 0);
      Counter done;
      for (std::size_t i = 0; i < results.size(); ++i) {
        js.run(done, [&results, i](Context& ctx) -> Task<> { results[i] = co_await fib(ctx, 16); });
      }
      js.wait(done);
      for (std::int64_t r : results) CHECK(r == 987);
    }
  }
}
