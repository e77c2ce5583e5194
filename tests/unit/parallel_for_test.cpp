// parallel_for: every index exactly once, across grains, sizes and worker counts.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>
#include <fiberjob/parallel_for.hpp>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

TEST_SUITE("parallel_for") {
  TEST_CASE("every index runs exactly once for any size, grain and worker count") {
    test::Watchdog watchdog("parallel_for coverage", 120s);
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      for (int size : {0, 1, 7, 64, 1000, 10'007}) {
        for (int grain : {0, 1, 3, 64, 100'000}) {
          CAPTURE(size);
          CAPTURE(grain);
          std::vector<std::atomic<int>> hits(static_cast<std::size_t>(size));
          parallel_for(js, 0, size, grain, [&hits](int i) { hits[i].fetch_add(1); });
          int wrong = 0;
          for (auto& h : hits) wrong += h.load() != 1;
          CHECK(wrong == 0);
        }
      }
    }
  }

  TEST_CASE("the range form gets disjoint batches that cover the range, with negative bounds") {
    JobSystem js{test::config_with(4)};
    std::vector<std::atomic<int>> hits(300);
    std::atomic<int> batches{0};
    Counter done;
    js.run(done, [&](Context& ctx) {
      parallel_for(ctx, std::int64_t{-150}, std::int64_t{150}, std::int64_t{16},
                   [&](std::int64_t lo, std::int64_t hi) {
                     batches.fetch_add(1);
                     for (std::int64_t i = lo; i < hi; ++i) hits[i + 150].fetch_add(1);
                   });
    });
    js.wait(done);
    int wrong = 0;
    for (auto& h : hits) wrong += h.load() != 1;
    CHECK(wrong == 0);
    CHECK(batches.load() == 19);  // ceil(300 / 16)
  }

  TEST_CASE("a nested parallel_for inside a batch works and sums correctly") {
    test::Watchdog watchdog("nested parallel_for", 60s);
    JobSystem js{test::config_with(2)};
    std::atomic<long> sum{0};
    parallel_for(js, 0, 16, 1, [&](int outer) {
      // Each batch is a job: it may itself fan out (stackful wait inside a batch).
      parallel_for(js.context(), 0, 100, 0,
                   [&sum, outer](int i) { sum.fetch_add(outer * 100 + i); });
    });
    CHECK(sum.load() == (1600L * 1599L) / 2);
  }

  TEST_CASE("an exception from one batch reaches the caller after all batches ended") {
    JobSystem js{test::config_with(2)};
    std::atomic<int> ran{0};
    CHECK_THROWS_WITH_AS(parallel_for(js, 0, 100, 1,
                                      [&ran](int i) {
                                        ran.fetch_add(1);
                                        if (i == 42) throw std::runtime_error("index 42");
                                      }),
                         "index 42", std::runtime_error);
    CHECK(ran.load() == 100);
  }

  TEST_CASE("the co_await form runs the loop inside a coroutine job") {
    test::Watchdog watchdog("parallel_for_async", 60s);
    JobSystem js{test::config_with(4)};
    std::vector<float> values(10'000, 2.0f);
    Counter done;
    js.run(done, [&values](Context& ctx) -> Task<> {
      co_await parallel_for_async(ctx, std::size_t{0}, values.size(), std::size_t{0},
                                  [&values](std::size_t lo, std::size_t hi) {
                                    for (std::size_t i = lo; i < hi; ++i) values[i] *= values[i];
                                  });
    });
    js.wait(done);
    int wrong = 0;
    for (float v : values) wrong += v != 4.0f;
    CHECK(wrong == 0);
  }
}
