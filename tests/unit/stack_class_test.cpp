// Stack classes: a Config with more than one fiber pool (Naughty Dog's engine keeps 128 fibers
// of 64 KiB and 32 of 512 KiB) and JobOptions choosing the class per spawn.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
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

/// What write_diagnostics writes, as text.
std::string diagnostics_text() {
  char* buffer = nullptr;
  std::size_t size = 0;
  std::FILE* out = ::open_memstream(&buffer, &size);
  REQUIRE(out != nullptr);
  write_diagnostics(out);
  std::fclose(out);
  std::string report(buffer, size);
  std::free(buffer);
  return report;
}

/// Queues on `children` a class-1 job that counts itself in `ran`, from another thread: in the
/// injector, never on the calling worker's deque, so a wait cannot run it inline (as when
/// another worker stole it).
void queue_from_another_thread(JobSystem& js, Counter& children, std::atomic<int>& ran) {
  std::thread([&] { js.run(children, JobOptions{.stack_class = 1}, [&] { ++ran; }); }).join();
}

/// Checks that `error` is the FiberPoolExhausted of class 1 ("large"), its message containing
/// `advice`.
void check_large_class_exhausted(const Error& error, const std::string& advice) {
  CHECK(error.code() == ErrorCode::FiberPoolExhausted);
  const std::string what = error.what();
  CHECK(what.find("stack class 'large'") != std::string::npos);
  CHECK(what.find(advice) != std::string::npos);
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

  TEST_CASE("jobs beyond the class's fibers wait for one while those run") {
    test::Watchdog watchdog("class pool full", 60s);
    JobSystem js{two_classes(2, /*large_fibers=*/2)};
    std::atomic<bool> gate{false};
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
        while (!gate.load()) std::this_thread::yield();  // runs on its large fiber meanwhile
        inside.fetch_sub(1);
        finished.fetch_add(1);
      });
    }
    while (inside.load() < 2) std::this_thread::yield();
    CHECK(inside.load() == 2);  // both large fibers run a job: the other six wait for one
    gate.store(true);
    js.wait(done);
    CHECK(finished.load() == 8);
    CHECK(most.load() == 2);
  }

  TEST_CASE("a plain class job may not wait holding the class's last fiber") {
    test::Watchdog watchdog("waits holding class fibers", 60s);
    JobSystem js{two_classes(2, /*large_fibers=*/3)};
    Event gate;
    std::atomic<int> waiting{0};
    std::atomic<int> refused{0};
    std::atomic<int> finished{0};
    Counter done;
    for (int i = 0; i < 6; ++i) {
      js.run(done, JobOptions{.stack_class = 1}, [&] {
        try {
          waiting.fetch_add(1);
          this_fiber::wait(gate);  // holds its large fiber while suspended
          finished.fetch_add(1);
        } catch (const Error& error) {
          waiting.fetch_sub(1);
          check_large_class_exhausted(error, "Config::stack_classes[0].max_fiber_count = 3");
          refused.fetch_add(1);
        }
      });
    }
    while (refused.load() < 4) std::this_thread::yield();
    CHECK(refused.load() == 4);  // two wait, holding two of three; the third stays free
    gate.set();
    js.wait(done);
    CHECK(finished.load() == 2);
  }

  TEST_CASE("a class job waiting for a class child another worker took does not deadlock") {
    // The waiting parent holds the class's only fiber; the child cannot start anywhere else.
    // Waiting would deadlock, so the wait throws FiberPoolExhausted naming the class, as the
    // default class's wait does at Config::max_fiber_count.
    test::Watchdog watchdog("class parent and stolen class child", 60s);
    for (const std::uint32_t workers : {1u, 2u}) {
      JobSystem js{two_classes(workers, /*large_fibers=*/1)};
      Counter children;
      Counter done;
      std::atomic<int> ran{0};
      js.run(done, JobOptions{.stack_class = 1}, [&] {
        queue_from_another_thread(js, children, ran);
        this_fiber::wait(children);
      });
      try {
        js.wait(done);
        FAIL("expected FiberPoolExhausted");
      } catch (const Error& error) {
        check_large_class_exhausted(error, "Raise Config::stack_classes[0].max_fiber_count");
      }
      js.wait(children);  // the child got the fiber once the parent ended
      CHECK(ran.load() == 1);
    }
  }

  TEST_CASE("with a spare class fiber the parent waits and the taken child runs on it") {
    test::Watchdog watchdog("class parent with a spare fiber", 60s);
    JobSystem js{two_classes(2, /*large_fibers=*/2)};
    Counter children;
    Counter done;
    std::atomic<int> ran{0};
    js.run(done, JobOptions{.stack_class = 1}, [&] {
      queue_from_another_thread(js, children, ran);
      this_fiber::wait(children);
      CHECK(ran.load() == 1);
    });
    js.wait(done);
    CHECK(ran.load() == 1);
  }

  TEST_CASE("class parents fanning out to stolen class children finish or report, never hang") {
    test::Watchdog watchdog("class fan-out", 120s);
    for (const std::uint32_t fibers : {1u, 2u, 4u}) {
      JobSystem js{two_classes(2, fibers)};
      for (int round = 0; round < 10; ++round) {
        Counter children;
        Counter done;
        std::atomic<int> ran{0};
        js.run(done, JobOptions{.stack_class = 1}, [&](Context& ctx) {
          for (int i = 0; i < 8; ++i) {
            ctx.spawn(children, JobOptions{.stack_class = 1}, [&] {
              std::this_thread::sleep_for(1ms);  // lets the other worker steal siblings
              ++ran;
            });
          }
          this_fiber::wait(children);
        });
        try {
          js.wait(done);
        } catch (const Error& error) {
          CHECK(error.code() == ErrorCode::FiberPoolExhausted);
          CHECK(fibers == 1);  // with a spare fiber the parent may wait
        }
        js.wait(children);
        CHECK(ran.load() == 8);
      }
    }
  }

  TEST_CASE("a worker whose only work waits for a class fiber parks") {
    test::Watchdog watchdog("worker waiting for a class fiber", 60s);
    JobSystem js{two_classes(2, /*large_fibers=*/1)};
    std::atomic<bool> holder_started{false};
    std::atomic<bool> gate{false};
    std::atomic<int> ran{0};
    Counter done;
    js.run(done, JobOptions{.stack_class = 1}, [&] {  // holds the class's only fiber, running
      holder_started.store(true);
      while (!gate.load()) std::this_thread::yield();
    });
    while (!holder_started.load()) std::this_thread::yield();
    js.run(done, JobOptions{.stack_class = 1}, [&] { ++ran; });
    // The other worker takes the job, finds no fiber of the class, and parks until one comes
    // back: the diagnostics show the kept job and a parked worker.
    for (;;) {
      const std::string report = diagnostics_text();
      if (report.find("1 jobs waiting for one") != std::string::npos &&
          report.find("parked waiters=1") != std::string::npos) {
        break;
      }
      std::this_thread::yield();
    }
    CHECK(ran.load() == 0);
    gate.store(true);
    js.wait(done);
    CHECK(ran.load() == 1);
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
