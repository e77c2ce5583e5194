// Scale: a million jobs across nested waits, and ten thousand fibers suspended at once.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {
std::uint64_t leaf_value(std::uint64_t i) { return i * 2654435761u ^ (i >> 3); }
}  // namespace

TEST_SUITE("stress") {
  TEST_CASE("1,000,000 jobs across nested waits produce every result") {
    test::Watchdog watchdog("million jobs", 600s);
    constexpr int kFanout = 100;  // 100 roots x 100 mids x 100 leaves
    constexpr std::size_t kLeaves = kFanout * kFanout * kFanout;
    for (std::uint32_t workers : {2u, 8u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers, 512)};
      auto results = std::make_unique<std::uint64_t[]>(kLeaves);
      std::vector<std::uint64_t> mid_sums(kFanout * kFanout, 0);
      Counter done;
      for (int r = 0; r < kFanout; ++r) {
        js.run(done, [&, r](Context& ctx) {
          Counter mids;
          for (int m = 0; m < kFanout; ++m) {
            ctx.spawn(mids, [&, r, m](Context& mctx) {
              const std::size_t base = (std::size_t(r) * kFanout + m) * kFanout;
              Counter leaves;
              for (int l = 0; l < kFanout; ++l) {
                mctx.spawn(leaves, [&results, i = base + l] { results[i] = leaf_value(i); });
              }
              this_fiber::wait(leaves);
              std::uint64_t sum = 0;  // the wait made every leaf's write visible
              for (int l = 0; l < kFanout; ++l) sum += results[base + l];
              mid_sums[std::size_t(r) * kFanout + m] = sum;
            });
          }
          this_fiber::wait(mids);
        });
      }
      js.wait(done);
      std::size_t wrong_leaves = 0;
      for (std::size_t i = 0; i < kLeaves; ++i) wrong_leaves += results[i] != leaf_value(i);
      std::size_t wrong_sums = 0;
      for (std::size_t m = 0; m < mid_sums.size(); ++m) {
        std::uint64_t expected = 0;
        for (std::size_t l = 0; l < kFanout; ++l) expected += leaf_value(m * kFanout + l);
        wrong_sums += mid_sums[m] != expected;
      }
      CHECK(wrong_leaves == 0);
      CHECK(wrong_sums == 0);
      CHECK(js.stats().jobs_run == kLeaves + kFanout * kFanout + kFanout);
    }
  }

  TEST_CASE("10,000 fibers suspended on one counter are all resumed exactly once") {
    test::Watchdog watchdog("ten thousand waiters", 600s);
    constexpr int kWaiters = 10'000;
    constexpr std::uint32_t kWorkers = 4;
    JobSystem js{test::config_with(kWorkers, kWaiters + 64)};
    Counter gate;
    gate.add(1);
    std::vector<std::atomic<int>> resumed(kWaiters);
    Counter done;
    for (int i = 0; i < kWaiters; ++i) {
      js.run(done, [&, i] {
        this_fiber::wait(gate);
        resumed[i].fetch_add(1);
      });
    }
    // Every waiter holds a fiber; each worker runs one more.
    while (js.stats().fibers_in_use < kWaiters + kWorkers) std::this_thread::sleep_for(1ms);
    CHECK(js.stats().fibers_in_use_high_water >= kWaiters);
    Counter release;
    js.run(release, [&gate] { gate.signal(); });  // wakes 10,000 fibers in one drain
    js.wait(release);
    js.wait(done);
    int wrong = 0;
    for (auto& r : resumed) wrong += r.load() != 1;
    CHECK(wrong == 0);
    CHECK(js.stats().fibers_in_use == kWorkers);
  }
}
