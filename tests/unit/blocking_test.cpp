// Blocking calls on the job system's bounded pool: the job suspends, the worker keeps running
// other jobs (ports, in spirit, of marl's blocking_call tests).

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include "support/config.hpp"
#include "support/thread_id.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

/// Blocks its OS thread until `flag` is set (what a worker must never do).
void block_until(const std::atomic<bool>& flag) {
  while (!flag.load()) std::this_thread::sleep_for(100us);
}

}  // namespace

TEST_SUITE("blocking") {
  TEST_CASE("a blocking call does not stall the worker: a job on it sets what the call awaits") {
    test::Watchdog watchdog("blocking call on one worker", 60s);
    JobSystem js{test::config_with(1)};
    std::atomic<bool> released{false};
    std::atomic<int> result{0};
    Counter done;
    js.run(done, [&] {
      result.store(this_fiber::blocking([&] {
        block_until(released);  // on a pool thread; the one worker runs the job below
        return 42;
      }));
    });
    js.run(done, [&] { released.store(true); });
    js.wait(done);
    CHECK(result.load() == 42);
  }

  TEST_CASE("co_await ctx.blocking returns the result, or rethrows, on a worker") {
    test::Watchdog watchdog("co_await blocking", 60s);
    JobSystem js{test::config_with(2)};
    std::atomic<bool> released{false};
    std::atomic<int> sum{0};
    std::atomic<int> errors{0};
    std::atomic<int> on_worker{0};
    Counter done;
    for (int i = 0; i < 8; ++i) {
      js.run(done, [&, i](Context& ctx) -> Task<> {
        const int value = co_await ctx.blocking([&released, i] {
          block_until(released);
          return i;
        });
        sum.fetch_add(value);
        if (ctx.worker_index() != Context::kNotAWorker) on_worker.fetch_add(1);
        try {
          co_await ctx.blocking([] { throw std::runtime_error("from the blocking call"); });
        } catch (const std::runtime_error&) {
          errors.fetch_add(1);
        }
      });
    }
    js.run(done, [&] { released.store(true); });
    js.wait(done);
    CHECK(sum.load() == 28);
    CHECK(errors.load() == 8);
    CHECK(on_worker.load() == 8);
  }

  TEST_CASE("the pool is bounded: calls beyond max_blocking_threads queue, all finish") {
    test::Watchdog watchdog("bounded blocking pool", 60s);
    Config config = test::config_with(2);
    config.max_blocking_threads = 2;
    JobSystem js{config};
    std::atomic<int> inside{0};
    std::atomic<int> most{0};
    std::mutex mutex;
    std::set<std::thread::id> threads;
    Counter done;
    for (int i = 0; i < 12; ++i) {
      js.run(done, [&] {
        this_fiber::blocking([&] {
          const int now = inside.fetch_add(1) + 1;
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
          {
            std::lock_guard lock(mutex);
            threads.insert(std::this_thread::get_id());
          }
          std::this_thread::sleep_for(2ms);
          inside.fetch_sub(1);
        });
      });
    }
    js.wait(done);
    CHECK(most.load() <= 2);
    CHECK(most.load() >= 1);
    CHECK(threads.size() <= 2);
  }

  TEST_CASE("on a plain thread the call runs inline") {
    const std::thread::id caller = test::current_thread_id();
    std::thread::id ran_on;
    const int value = this_fiber::blocking([&] {
      ran_on = test::current_thread_id();
      return 7;
    });
    CHECK(value == 7);
    CHECK(ran_on == caller);
  }

  TEST_CASE("destroying the system waits for a blocking call in flight and its job's end") {
    test::Watchdog watchdog("shutdown with a blocking call", 60s);
    std::atomic<bool> finished{false};
    std::atomic<bool> started{false};
    Counter done;
    {
      JobSystem js{test::config_with(2)};
      js.run(done, [&] {
        this_fiber::blocking([&] {
          started.store(true);
          std::this_thread::sleep_for(20ms);
        });
        finished.store(true);
      });
      while (!started.load()) std::this_thread::yield();
    }  // the destructor: the workers wait (parked) for the call, then run the job's end
    CHECK(finished.load());
    CHECK(done.pending() == 0);
  }
}
