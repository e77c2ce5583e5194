// parallel_for: every index exactly once, across grains, sizes and worker counts; mixed index
// types, bounds that do not fit the index type, and ranges wider than the signed maximum.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>
#include <fiberjob/parallel_for.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

/// The batches a range body received, sorted: they must tile [begin, end) exactly.
template <class Index>
struct BatchLog {
  std::mutex mutex;
  std::vector<std::pair<Index, Index>> batches;

  void add(Index lo, Index hi) {
    std::lock_guard lock(mutex);
    batches.emplace_back(lo, hi);
  }
  /// True when the batches are non-empty and, sorted, run from `begin` to `end` without gap or
  /// overlap.
  bool tiles(Index begin, Index end) {
    std::sort(batches.begin(), batches.end());
    Index at = begin;
    for (const auto& [lo, hi] : batches) {
      if (lo != at || !(lo < hi)) return false;
      at = hi;
    }
    return at == end;
  }
};

}  // namespace

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

  TEST_CASE("begin, end and grain may be of different integer types") {
    JobSystem js{test::config_with(2)};
    std::vector<std::atomic<int>> hits(1000);
    // int begin and grain, std::size_t end: the loop runs over std::size_t.
    parallel_for(js, 0, hits.size(), 0, [&hits](std::size_t i) { hits[i].fetch_add(1); });
    // A std::int64_t begin with an int end and an unsigned grain: over std::int64_t.
    parallel_for(js, std::int64_t{0}, 1000, 7u, [&hits](std::int64_t i) {
      static_assert(std::is_same_v<decltype(i), std::int64_t>);
      hits[static_cast<std::size_t>(i)].fetch_add(1);
    });
    Counter done;
    js.run(done, [&hits](Context& ctx) -> Task<> {
      co_await parallel_for_async(ctx, 0, hits.size(), 16,
                                  [&hits](std::size_t i) { hits[i].fetch_add(1); });
      parallel_for(ctx, short{0}, hits.size(), std::uint8_t{200},
                   [&hits](std::size_t i) { hits[i].fetch_add(1); });
    });
    js.wait(done);
    int wrong = 0;
    for (auto& h : hits) wrong += h.load() != 4;
    CHECK(wrong == 0);
  }

  TEST_CASE("a bound that does not fit the common index type throws InvalidArgument") {
    JobSystem js{test::config_with(2)};
    std::vector<int> v(10);
    std::atomic<int> ran{0};
    auto body = [&ran](std::size_t) { ran.fetch_add(1); };
    // -1 (int) with a std::size_t end: std::size_t cannot hold -1; running "nothing" (as a
    // converted begin of SIZE_MAX would) would hide the mistake.
    try {
      parallel_for(js, -1, v.size(), 0, body);
      FAIL("parallel_for accepted begin = -1 with a std::size_t end");
    } catch (const Error& error) {
      CHECK(error.code() == ErrorCode::InvalidArgument);
      CHECK(std::string(error.what()).find("begin = -1") != std::string::npos);
    }
    Counter done;
    std::atomic<bool> async_threw{false};
    js.run(done, [&](Context& ctx) -> Task<> {
      try {
        co_await parallel_for_async(ctx, -5, v.size(), 0, body);
      } catch (const Error& error) {
        async_threw = error.code() == ErrorCode::InvalidArgument;
      }
    });
    js.wait(done);
    CHECK(async_threw.load());
    CHECK(ran.load() == 0);
  }

  TEST_CASE(
      "an empty or reversed range runs nothing, and a grain beyond the range runs one batch") {
    JobSystem js{test::config_with(2)};
    std::atomic<int> calls{0};
    parallel_for(js, 5, 5, 0, [&calls](int) { calls.fetch_add(1); });
    parallel_for(js, 10, 3, 1, [&calls](int) { calls.fetch_add(1); });
    parallel_for(js, std::int64_t{-3}, -7, 0, [&calls](std::int64_t) { calls.fetch_add(1); });
    CHECK(calls.load() == 0);
    BatchLog<int> log;
    parallel_for(js, -10, 10, std::numeric_limits<std::int64_t>::max(),
                 [&log](int lo, int hi) { log.add(lo, hi); });
    CHECK(log.batches.size() == 1);
    CHECK(log.tiles(-10, 10));
    BatchLog<int> negative_grain;  // a negative grain is "automatic", like 0
    parallel_for(js, 0, 100, -4, [&negative_grain](int lo, int hi) { negative_grain.add(lo, hi); });
    CHECK(negative_grain.tiles(0, 100));
  }

  TEST_CASE("ranges wider than the signed maximum are split without overflow") {
    JobSystem js{test::config_with(2)};
    // [INT32_MIN, INT32_MAX): 2^32 - 1 indices, more than INT32_MAX; range bodies only.
    constexpr int kMin32 = std::numeric_limits<int>::min();
    constexpr int kMax32 = std::numeric_limits<int>::max();
    for (int grain : {0, kMax32, 1 << 30}) {
      CAPTURE(grain);
      BatchLog<int> log;
      parallel_for(js, kMin32, kMax32, grain, [&log](int lo, int hi) { log.add(lo, hi); });
      CHECK(log.tiles(kMin32, kMax32));
    }
    // The whole std::int64_t range but its last index, from a job, with the automatic grain.
    constexpr std::int64_t kMin64 = std::numeric_limits<std::int64_t>::min();
    constexpr std::int64_t kMax64 = std::numeric_limits<std::int64_t>::max();
    BatchLog<std::int64_t> log64;
    Counter done;
    js.run(done, [&log64](Context& ctx) {
      parallel_for(ctx, kMin64, kMax64, 0,
                   [&log64](std::int64_t lo, std::int64_t hi) { log64.add(lo, hi); });
    });
    js.wait(done);
    CHECK(log64.batches.size() == 2 * detail::kBatchesPerWorker);
    CHECK(log64.tiles(kMin64, kMax64));
    // Unsigned up to the maximum: the last batch ends exactly at SIZE_MAX.
    constexpr std::size_t kMaxSize = std::numeric_limits<std::size_t>::max();
    BatchLog<std::size_t> log_unsigned;
    parallel_for(js, kMaxSize - 1000, kMaxSize, 300,
                 [&log_unsigned](std::size_t lo, std::size_t hi) { log_unsigned.add(lo, hi); });
    CHECK(log_unsigned.batches.size() == 4);
    CHECK(log_unsigned.tiles(kMaxSize - 1000, kMaxSize));
  }
}
