// The primitives under load: thousands of waiters on one event, an auto-reset event passed as
// a token under contention, mutex and semaphore traffic on tiny fiber pools with 16 KiB
// stacks, and waits for many values racing signals and adds.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "support/config.hpp"
#include "support/detached.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

test::Detached foreign_wait(Event& event, std::atomic<int>& woken) {
  co_await event;
  woken.fetch_add(1, std::memory_order_relaxed);
}

Config tiny_pool(std::uint32_t workers) {
  Config config = test::config_with(workers, 2);
  config.fiber_stack_size = Config::kMinFiberStackSize;  // 16 KiB
  return config;
}

}  // namespace

TEST_SUITE("primitives stress") {
  TEST_CASE("10,000 coroutine waiters, 500 plain waiters and threads on one event all wake") {
    test::Watchdog watchdog("10,000 waiters", 300s);
    JobSystem js{test::config_with(2)};
    Event event;
    std::atomic<int> woken{0};
    constexpr int kCoroutines = 10000;
    constexpr int kPlain = 500;
    constexpr int kForeign = 100;
    Counter done;
    for (int i = 0; i < kCoroutines; ++i) {
      js.run(done, [&](Context&) -> Task<> {
        co_await event;
        woken.fetch_add(1, std::memory_order_relaxed);
      });
    }
    for (int i = 0; i < kPlain; ++i) {
      js.run(done, [&] {
        this_fiber::wait(event);
        woken.fetch_add(1, std::memory_order_relaxed);
      });
    }
    for (int i = 0; i < kForeign; ++i) foreign_wait(event, woken);
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
      threads.emplace_back([&] {
        this_fiber::wait(event);
        woken.fetch_add(1, std::memory_order_relaxed);
      });
    }
    CHECK(woken.load() == 0);
    js.run(done, [&] { event.set(); });  // set from a job: woken in one batch
    js.wait(done);
    for (std::thread& thread : threads) thread.join();
    while (woken.load() != kCoroutines + kPlain + kForeign + 2) std::this_thread::yield();
    CHECK(woken.load() == kCoroutines + kPlain + kForeign + 2);
  }

  TEST_CASE("an auto-reset event passed as a token admits exactly one holder per set") {
    test::Watchdog watchdog("auto-reset token", 300s);
    for (std::uint32_t workers : {2u, 4u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Event token(Event::Mode::Auto, true);
      std::atomic<int> holders{0};
      std::atomic<int> overlaps{0};
      std::atomic<int> passes{0};
      constexpr int kJobs = 32;
      constexpr int kRounds = 300;
      auto hold = [&] {
        if (holders.fetch_add(1) != 0) overlaps.fetch_add(1);
        passes.fetch_add(1, std::memory_order_relaxed);
        holders.fetch_sub(1);
      };
      Counter done;
      for (int j = 0; j < kJobs; ++j) {
        if (j % 2 == 0) {
          js.run(done, [&] {
            for (int r = 0; r < kRounds; ++r) {
              this_fiber::wait(token);
              hold();
              token.set();
            }
          });
        } else {
          js.run(done, [&](Context&) -> Task<> {
            for (int r = 0; r < kRounds; ++r) {
              co_await token;
              hold();
              token.set();
            }
          });
        }
      }
      js.wait(done);
      CHECK(overlaps.load() == 0);
      CHECK(passes.load() == kJobs * kRounds);
      CHECK(token.is_set());  // the last holder gave it back
    }
  }

  TEST_CASE("mutex, semaphore and event traffic on a tiny pool of 16 KiB stacks") {
    test::Watchdog watchdog("tiny pools", 300s);
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      JobSystem js{tiny_pool(workers)};
      Mutex mutex;
      Semaphore semaphore(2);
      Event start;
      long long total = 0;  // guarded by mutex
      std::atomic<int> inside{0};
      std::atomic<int> overlaps{0};
      Counter done;
      constexpr int kJobs = 24;
      constexpr int kRounds = 200;
      for (int j = 0; j < kJobs; ++j) {
        js.run(done, [&, j] {
          this_fiber::wait(start);
          for (int r = 0; r < kRounds; ++r) {
            if ((j + r) % 3 == 0) {
              semaphore.acquire();
              this_fiber::yield();
              semaphore.release();
            }
            std::scoped_lock lock(mutex);
            if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
            ++total;
            inside.fetch_sub(1);
          }
        });
      }
      start.set();
      js.wait(done);
      CHECK(overlaps.load() == 0);
      CHECK(total == static_cast<long long>(kJobs) * kRounds);
      CHECK(semaphore.available() == 2);
    }
  }

  TEST_CASE("coroutine waiters hold no fiber: 2,000 wait on a pool capped at 8 fibers") {
    test::Watchdog watchdog("coroutine waiters, capped pool", 120s);
    Config config = tiny_pool(2);
    config.max_fiber_count = 8;
    JobSystem js{config};
    Event event;
    Mutex mutex;
    Semaphore semaphore(0);
    std::atomic<int> woken{0};
    Counter done;
    for (int i = 0; i < 2000; ++i) {
      js.run(done, [&](Context&) -> Task<> {
        co_await event;
        co_await semaphore.acquire_async();
        auto guard = co_await mutex.scoped_lock();
        woken.fetch_add(1);
      });
    }
    event.set();
    semaphore.release(2000);
    js.wait(done);
    CHECK(woken.load() == 2000);
  }

  TEST_CASE("waits for random values race signals and adds and never resume early") {
    test::Watchdog watchdog("value waits", 300s);
    for (std::uint32_t workers : {1u, 2u, 4u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::atomic<int> early{0};
      std::atomic<int> resumed{0};
      int expected = 0;
      std::mt19937 random(workers);
      for (int round = 0; round < 1000; ++round) {
        auto work = std::make_unique<Counter>();
        const int units = 2 + static_cast<int>(random() % 30);
        // Odd rounds add units among the signals: the count then goes up again, so a waiter
        // may see it above its target after a correct wake; only even rounds check that.
        const bool with_adds = round % 2 == 1;
        work->add(units);
        Counter done;
        for (int w = 0; w < 6; ++w) {
          const std::int64_t target = static_cast<std::int64_t>(random() % (units + 1));
          ++expected;
          if (w % 2 == 0) {
            js.run(done, [&, target, with_adds, c = work.get()] {
              this_fiber::wait(*c, target);
              if (!with_adds && c->pending() > target) early.fetch_add(1);
              resumed.fetch_add(1);
            });
          } else {
            js.run(done, [&, target, with_adds, c = work.get()](Context& ctx) -> Task<> {
              co_await ctx.wait(*c, target);
              if (!with_adds && c->pending() > target) early.fetch_add(1);
              resumed.fetch_add(1);
            });
          }
        }
        Counter signallers;
        for (int i = 0; i < units; ++i) {
          js.run(signallers, [c = work.get(), i, with_adds] {
            if (with_adds && i % 5 == 0) {
              c->add(1);  // an add among the signals: one more signal to come
              c->signal();
            }
            c->signal();
          });
        }
        js.wait(signallers);
        js.wait(done);
        js.wait(*work);
        work.reset();  // every wait on it returned: it may go
      }
      CHECK(early.load() == 0);
      CHECK(resumed.load() == expected);
    }
  }
}
