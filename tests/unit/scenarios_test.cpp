// The seeds' three scenarios — producer-consumer, recursive parallelism, hierarchical jobs —
// across 1, 2, 4 and 8 workers.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <numeric>
#include <vector>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

long fib_jobs(Context& ctx, int n) {
  if (n < 2) return n;
  long a = 0;
  long b = 0;
  Counter children;  // on this fiber's stack: dies right after the wait returns
  ctx.spawn(children, [&a, n](Context& c) { a = fib_jobs(c, n - 1); });
  ctx.spawn(children, [&b, n](Context& c) { b = fib_jobs(c, n - 2); });
  this_fiber::wait(children);
  return a + b;
}

long fib_serial(int n) { return n < 2 ? n : fib_serial(n - 1) + fib_serial(n - 2); }

}  // namespace

TEST_SUITE("scenarios") {
  TEST_CASE("recursive fib with spawn-and-wait at every level gives the serial result") {
    test::Watchdog watchdog("recursive fib", 120s);
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      for (int n : {0, 1, 2, 10, 18}) {
        CAPTURE(n);
        long result = -1;
        Counter done;
        js.run(done, [&result, n](Context& ctx) { result = fib_jobs(ctx, n); });
        js.wait(done);
        CHECK(result == fib_serial(n));
      }
      CHECK(js.stats().fibers_in_use == workers);  // every suspended fiber came back
    }
  }

  TEST_CASE("producers and consumers hand over every item exactly once") {
    test::Watchdog watchdog("producer-consumer", 120s);
    constexpr int kProducers = 4;
    constexpr int kItemsEach = 2000;
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      // Each produced item is a job of its own (the consumer); the producer waits for a batch
      // of its consumers before producing the next, like a bounded pipeline.
      std::vector<std::atomic<int>> seen(kProducers * kItemsEach);
      Counter done;
      for (int p = 0; p < kProducers; ++p) {
        js.run(done, [&seen, p](Context& ctx) {
          Counter batch;
          for (int i = 0; i < kItemsEach; ++i) {
            const int item = p * kItemsEach + i;
            ctx.spawn(batch, [&seen, item] { seen[item].fetch_add(1); });
            if (i % 64 == 63) this_fiber::wait(batch);
          }
          this_fiber::wait(batch);
        });
      }
      js.wait(done);
      int wrong = 0;
      for (auto& s : seen) wrong += s.load() != 1;
      CHECK(wrong == 0);
    }
  }

  TEST_CASE("hierarchical jobs: parents wait for children that wait for grandchildren") {
    test::Watchdog watchdog("hierarchical", 120s);
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      constexpr int kParents = 8;
      constexpr int kChildren = 8;
      constexpr int kGrandchildren = 16;
      std::atomic<long> leaves{0};
      std::atomic<int> parents_done{0};
      std::atomic<int> order_violations{0};
      Counter done;
      for (int p = 0; p < kParents; ++p) {
        js.run(done, [&](Context& ctx) {
          std::atomic<int> children_done{0};
          Counter children;
          for (int c = 0; c < kChildren; ++c) {
            ctx.spawn(children, [&](Context& child) {
              std::atomic<int> grandchildren_done{0};
              Counter grandchildren;
              for (int g = 0; g < kGrandchildren; ++g) {
                child.spawn(grandchildren, [&] {
                  leaves.fetch_add(1);
                  grandchildren_done.fetch_add(1);
                });
              }
              this_fiber::wait(grandchildren);
              if (grandchildren_done.load() != kGrandchildren) order_violations.fetch_add(1);
              children_done.fetch_add(1);
            });
          }
          this_fiber::wait(children);
          if (children_done.load() != kChildren) order_violations.fetch_add(1);
          parents_done.fetch_add(1);
        });
      }
      js.wait(done);
      CHECK(parents_done.load() == kParents);
      CHECK(leaves.load() == long{kParents} * kChildren * kGrandchildren);
      CHECK(order_violations.load() == 0);
    }
  }
}
