// Stack classes: a Config with more than one fiber pool (Naughty Dog's engine keeps 128 fibers
// of 64 KiB and 32 of 512 KiB) and JobOptions choosing the class per spawn.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <algorithm>
#include <atomic>
#include <thread>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kSmallStack = Config::kMinFiberStackSize;  // 16 KiB
constexpr std::size_t kLargeStack = 512 * 1024;

/// Uses about `bytes` of stack (1 KiB per frame), far more than a 16 KiB fiber has.
__attribute__((noinline)) int use_stack(std::size_t bytes) {
  volatile char frame[1024];
  frame[0] = static_cast<char>(bytes & 0x7f);
  if (bytes <= sizeof frame) return frame[0];
  return use_stack(bytes - sizeof frame) + frame[0];
}

/// Default class 16 KiB; class 1 ("large") 512 KiB, at most `large_fibers` of them.
Config two_classes(std::uint32_t workers, std::uint32_t large_fibers = 32) {
  Config config = test::config_with(workers);
  config.fiber_stack_size = kSmallStack;
  StackClass large;
  large.name = "large";
  large.stack_size = kLargeStack;
  large.fiber_count = std::min<std::uint32_t>(large_fibers, 4);
  large.max_fiber_count = large_fibers;
  config.stack_classes.push_back(large);
  return config;
}

}  // namespace

TEST_SUITE("stack_class") {
  TEST_CASE("a job of the large class gets a deep stack, also across a suspension") {
    test::Watchdog watchdog("deep stack job", 60s);
    for (const std::uint32_t workers : {1u, 2u}) {
      JobSystem js{two_classes(workers)};
      Counter done;
      std::atomic<int> finished{0};
      for (int i = 0; i < 8; ++i) {
        js.run(done, JobOptions{.priority = Priority::High, .stack_class = 1, .name = "deep"}, [&] {
          (void)use_stack(128 * 1024);  // would overflow a 16 KiB default fiber
          this_fiber::yield();          // may resume on another worker: same fiber
          (void)use_stack(256 * 1024);
          finished.fetch_add(1);
        });
      }
      js.wait(done);
      CHECK(finished.load() == 8);
      CHECK(js.stats().fibers_created > two_classes(workers).fiber_count);  // the large pool's
    }
  }

  TEST_CASE("a parent on a small stack waiting for a large-class child does not run it inline") {
    test::Watchdog watchdog("large child of a small parent", 60s);
    JobSystem js{two_classes(1)};
    Counter done;
    std::atomic<int> ran{0};
    js.run(done, [&](Context& ctx) {
      Counter children;
      for (int i = 0; i < 4; ++i) {
        ctx.spawn(children, JobOptions{.stack_class = 1}, [&] {
          (void)use_stack(200 * 1024);
          ran.fetch_add(1);
        });
      }
      this_fiber::wait(children);  // runs default-class children inline; these ones not
    });
    js.wait(done);
    CHECK(ran.load() == 4);
  }

  TEST_CASE("a coroutine job's first run segment runs on its class's stack") {
    JobSystem js{two_classes(2)};
    Counter done;
    std::atomic<int> ran{0};
    js.run(done, JobOptions{.stack_class = 1}, [&](Context& ctx) -> Task<> {
      (void)use_stack(128 * 1024);
      co_await ctx.yield();
      ran.fetch_add(1);
    });
    js.wait(done);
    CHECK(ran.load() == 1);
  }

  TEST_CASE("jobs beyond the class's fibers wait for one instead of failing") {
    test::Watchdog watchdog("class pool full", 60s);
    JobSystem js{two_classes(2, /*large_fibers=*/2)};
    Event gate;
    std::atomic<int> inside{0};
    std::atomic<int> most{0};
    std::atomic<int> finished{0};
    Counter done;
    for (int i = 0; i < 8; ++i) {
      js.run(done, JobOptions{.stack_class = 1}, [&] {
        const int now = inside.fetch_add(1) + 1;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        this_fiber::wait(gate);  // holds its large fiber while suspended
        inside.fetch_sub(1);
        finished.fetch_add(1);
      });
    }
    while (inside.load() < 2) std::this_thread::yield();
    std::this_thread::sleep_for(10ms);
    CHECK(inside.load() == 2);  // both large fibers are held: the other six wait in the queues
    gate.set();
    js.wait(done);
    CHECK(finished.load() == 8);
    CHECK(most.load() == 2);
  }

  TEST_CASE("plain default-class jobs keep working beside the classes") {
    JobSystem js{two_classes(2)};
    Counter done;
    std::atomic<int> ran{0};
    for (int i = 0; i < 1000; ++i) {
      js.run(done, JobOptions{.stack_class = static_cast<std::uint8_t>(i % 2)},
             [&] { ran.fetch_add(1); });
    }
    js.wait(done);
    CHECK(ran.load() == 1000);
  }

  TEST_CASE("an unknown class and bad class configs are rejected with the field named") {
    JobSystem js{two_classes(1)};
    Counter done;
    CHECK_THROWS_AS(js.run(done, JobOptions{.stack_class = 2}, [] {}), Error);
    CHECK(done.pending() == 0);  // nothing queued
    try {
      js.context().spawn(done, JobOptions{.stack_class = 3}, [] {});
      FAIL("expected an error");
    } catch (const Error& error) {
      CHECK(error.code() == ErrorCode::InvalidArgument);
      CHECK(std::string(error.what()).find("JobOptions::stack_class = 3") != std::string::npos);
    }
    Config too_many = two_classes(1);
    too_many.stack_classes.resize(kMaxStackClasses);
    CHECK_THROWS_AS(JobSystem{too_many}, Error);
    Config no_fibers = two_classes(1);
    no_fibers.stack_classes[0].max_fiber_count = 0;
    try {
      JobSystem bad{no_fibers};
      FAIL("expected an error");
    } catch (const Error& error) {
      CHECK(error.code() == ErrorCode::InvalidConfig);
      CHECK(std::string(error.what()).find("Config::stack_classes[0].max_fiber_count") !=
            std::string::npos);
    }
    Config tiny = two_classes(1);
    tiny.stack_classes[0].stack_size = 1024;
    CHECK_THROWS_AS(JobSystem{tiny}, Error);
  }
}
