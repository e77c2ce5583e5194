// Cancellation with std::stop_token (jobs spawned with a token, ctx.stop_token(), waits and
// yields completing with Cancelled) and when_any, which stops the losers and joins them.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "support/cancellation.hpp"
#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

using test::is_cancelled;
using test::value_after_yields;

namespace {

constexpr std::uint32_t kSweep[] = {1, 2, 4};

/// Counts live instances: destructors of a cancelled job's locals must run.
struct Alive {
  std::atomic<int>& count;
  std::string payload = std::string(64, 'x');  // heap-allocated: a leak shows under ASan
  explicit Alive(std::atomic<int>& c) : count(c) { count.fetch_add(1); }
  ~Alive() { count.fetch_sub(1); }
  Alive(const Alive&) = delete;
  Alive& operator=(const Alive&) = delete;
};

/// Yields until its job's stop is requested (then the yield throws Cancelled).
Task<int> spin_until_stopped(Context& ctx, std::atomic<int>& alive) {
  const Alive guard(alive);
  for (;;) co_await ctx.yield();
}

Task<int> fails_now() {
  throw std::runtime_error("winner failed");
  co_return 0;
}

/// Queues `count` copies of `job` on `done` with `source`'s token, waits until `started` says
/// all of them run, and requests the stop.
template <typename Job>
void start_then_stop(JobSystem& js, Counter& done, std::stop_source& source,
                     const std::atomic<int>& started, int count, const Job& job) {
  for (int i = 0; i < count; ++i) js.run(done, job, source.get_token());
  while (started.load() < count) std::this_thread::yield();
  source.request_stop();
}

}  // namespace

TEST_SUITE("cancellation") {
  TEST_CASE("ctx.stop_token() is the job's token, also after suspensions; empty without") {
    test::Watchdog watchdog("stop_token", 60s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::stop_source source;
      std::atomic<int> matches{0};
      Counter done;
      for (int i = 0; i < 50; ++i) {
        js.run(
            done,
            [&, token = source.get_token()](Context& ctx) -> Task<> {
              for (int k = 0; k < 5; ++k) {
                if (ctx.stop_token() == token) matches.fetch_add(1);
                co_await ctx.yield();
              }
            },
            source.get_token());
        js.run(
            done,
            [&, token = source.get_token()](Context& ctx) {
              for (int k = 0; k < 5; ++k) {
                if (ctx.stop_token() == token) matches.fetch_add(1);
                this_fiber::yield();
              }
            },
            source.get_token());
        js.run(done, [&](Context& ctx) {
          if (!ctx.stop_token().stop_possible()) matches.fetch_add(1);
        });
      }
      js.wait(done);
      CHECK(matches.load() == 50 * 11);
      CHECK_FALSE(js.context().stop_token().stop_possible());  // not a job
    }
  }

  TEST_CASE("a job a wait runs inline has no token of the job run there before it") {
    // The wait runs its children newest first on its own stack: the coroutine child (with a
    // token; it suspends at its yield, its token going with it), then the plain child (none).
    // After the wait the parent has its own token again.
    test::Watchdog watchdog("nested stop_token", 60s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::stop_source parent_source;
      std::stop_source child_source;
      std::atomic<int> plain_without{0};
      std::atomic<int> coroutine_with{0};
      std::atomic<int> parent_with{0};
      Counter done;
      for (int i = 0; i < 50; ++i) {
        js.run(
            done,
            [&, parent_token = parent_source.get_token(),
             child_token = child_source.get_token()](Context& ctx) {
              Counter children;
              ctx.spawn(children, [&](Context& c) {
                if (!c.stop_token().stop_possible()) plain_without.fetch_add(1);
              });
              ctx.spawn(
                  children,
                  [&, child_token](Context& c) -> Task<> {
                    if (c.stop_token() == child_token) coroutine_with.fetch_add(1);
                    co_await c.yield();
                    if (c.stop_token() == child_token) coroutine_with.fetch_add(1);
                  },
                  child_source.get_token());
              this_fiber::wait(children);
              if (ctx.stop_token() == parent_token) parent_with.fetch_add(1);
            },
            parent_source.get_token());
      }
      js.wait(done);
      CHECK(plain_without.load() == 50);
      CHECK(coroutine_with.load() == 100);
      CHECK(parent_with.load() == 50);
    }
  }

  TEST_CASE("a stopped coroutine job unwinds at its next yield, destructors run") {
    test::Watchdog watchdog("cancel coroutine yield", 60s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::stop_source source;
      std::atomic<int> alive{0};
      std::atomic<int> started{0};
      Counter done;
      start_then_stop(js, done, source, started, 20, [&](Context& ctx) -> Task<> {
        const Alive guard(alive);
        started.fetch_add(1);
        for (;;) co_await ctx.yield();
      });
      try {
        js.wait(done);
        FAIL("no Cancelled error");
      } catch (const Error& error) {
        CHECK(is_cancelled(error));
      }
      CHECK(alive.load() == 0);
      CHECK(js.stats().coroutine_jobs_alive == 0);
    }
  }

  TEST_CASE("a stopped plain job unwinds at its next this_fiber::yield or wait") {
    test::Watchdog watchdog("cancel plain job", 60s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::stop_source source;
      std::atomic<int> alive{0};
      std::atomic<int> started{0};
      Counter done;
      start_then_stop(js, done, source, started, 10, [&] {
        const Alive guard(alive);
        started.fetch_add(1);
        for (;;) this_fiber::yield();
      });
      CHECK_THROWS_AS(js.wait(done), Error);
      CHECK(alive.load() == 0);
      // Stopped before the wait: it completes at once although the counter never reaches 0.
      Counter never;
      never.add(1);
      bool cancelled = false;
      Counter done2;
      js.run(
          done2,
          [&] {
            try {
              this_fiber::wait(never);
            } catch (const Error& error) {
              cancelled = is_cancelled(error);
            }
          },
          source.get_token());
      js.wait(done2);
      CHECK(cancelled);
      never.signal();
    }
  }

  TEST_CASE("after a stop, counter waits that need not suspend complete as without one") {
    // A plain job that joins children which ended already gets their exception, not
    // Cancelled, as a coroutine's co_await does; a wait that must suspend still throws.
    test::Watchdog watchdog("stopped waits that need not suspend", 60s);
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Counter zero;
      Counter failed;
      js.run(failed, [] { throw std::runtime_error("child failed"); });
      CHECK_THROWS_WITH_AS(js.wait(failed), "child failed", std::runtime_error);
      Counter two_left;  // at 2: a wait for 3 or less is met
      two_left.add(2);
      Counter never;
      never.add(1);
      JobHandle<int> ended;
      ended.spawn(js, value_after_yields(js.context(), 7, 0));
      while (!ended.done()) std::this_thread::yield();
      std::stop_source source;
      source.request_stop();
      std::atomic<int> normal{0};
      std::atomic<int> rethrown{0};
      std::atomic<int> cancelled{0};
      auto outcome = [&](auto&& wait) {
        try {
          wait();
          normal.fetch_add(1);
        } catch (const Error& error) {  // first: Error is a std::runtime_error
          if (is_cancelled(error)) cancelled.fetch_add(1);
        } catch (const std::runtime_error&) {
          rethrown.fetch_add(1);
        }
      };
      Counter done;
      js.run(
          done,
          [&] {
            outcome([&] { this_fiber::wait(zero); });
            outcome([&] { this_fiber::wait(zero, 0); });
            outcome([&] { this_fiber::wait(zero, 3); });
            outcome([&] { this_fiber::wait(two_left, 3); });
            outcome([&] { js.wait(zero); });
            outcome([&] { this_fiber::wait(failed); });
            outcome([&] { this_fiber::wait(failed, 0); });
            outcome([&] { js.wait(failed); });
            outcome([&] { this_fiber::wait(never); });        // must suspend: Cancelled
            outcome([&] { this_fiber::wait(two_left, 1); });  // must suspend: Cancelled
            outcome([&] { (void)ended.get(js); });  // a join: Cancelled, as co_await ended
          },
          source.get_token());
      js.wait(done);
      CHECK(normal.load() == 5);
      CHECK(rethrown.load() == 3);
      CHECK(cancelled.load() == 3);
      never.signal();
      two_left.signal();
      two_left.signal();
    }
  }

  TEST_CASE("a coroutine wait completes with Cancelled: stopped before, or while suspended") {
    test::Watchdog watchdog("cancel coroutine wait", 60s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::stop_source source;
      source.request_stop();
      Counter never;  // never reaches zero while the job runs
      never.add(1);
      bool before = false;
      Counter done;
      js.run(
          done,
          [&](Context& ctx) -> Task<> {
            try {
              co_await ctx.wait(never);
            } catch (const Error& error) {
              before = is_cancelled(error);
            }
          },
          source.get_token());
      js.wait(done);
      CHECK(before);
      never.signal();

      std::stop_source later;
      Counter gate;
      gate.add(1);
      std::atomic<bool> waiting{false};
      bool during = false;
      js.run(
          done,
          [&](Context& ctx) -> Task<> {
            waiting.store(true);
            try {
              co_await ctx.wait(gate);
            } catch (const Error& error) {
              during = is_cancelled(error);
            }
          },
          later.get_token());
      while (!waiting.load()) std::this_thread::yield();
      later.request_stop();
      gate.signal();
      js.wait(done);
      CHECK(during);
    }
  }

  TEST_CASE("a stopped timed wait's result bound to a variable unwinds with Cancelled") {
    // The form docs/api.md asks for under g++ 12 (a co_await used directly as an if condition
    // can be miscompiled there): the result is bound first, and a stop while the wait is
    // suspended unwinds the coroutine through it, out of the job to js.wait.
    test::Watchdog watchdog("cancel timed wait, bound result", 60s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Event never_set;
      std::stop_source source;
      std::atomic<bool> waiting{false};
      std::atomic<int> timed_out{0};
      std::atomic<int> set_seen{0};
      Counter done;
      js.run(
          done,
          [&](Context& ctx) -> Task<> {
            waiting.store(true);
            const bool set = co_await ctx.wait_for(never_set, 1h);
            if (!set) {
              timed_out.fetch_add(1);
            } else {
              set_seen.fetch_add(1);
            }
          },
          source.get_token());
      while (!waiting.load()) std::this_thread::yield();
      source.request_stop();
      bool cancelled = false;
      try {
        js.wait(done);
      } catch (const Error& error) {
        cancelled = is_cancelled(error);
      }
      CHECK(cancelled);
      CHECK(timed_out.load() == 0);
      CHECK(set_seen.load() == 0);
      CHECK_FALSE(never_set.is_set());
    }
  }

  TEST_CASE("100,000 cancelled coroutine jobs leave nothing behind") {
    test::Watchdog watchdog("100k cancelled", 300s);
    JobSystem js{test::config_with(2)};
    std::stop_source source;
    source.request_stop();
    std::atomic<int> alive{0};
    std::atomic<int> cancelled{0};
    Counter done;
    for (int i = 0; i < 100'000; ++i) {
      js.run(
          done,
          [&](Context& ctx) -> Task<> {
            const Alive guard(alive);
            try {
              co_await ctx.yield();
            } catch (const Error& error) {
              if (is_cancelled(error)) cancelled.fetch_add(1);
              throw;
            }
          },
          source.get_token());
    }
    CHECK_THROWS_AS(js.wait(done), Error);
    CHECK(cancelled.load() == 100'000);
    CHECK(alive.load() == 0);
    CHECK(js.stats().coroutine_jobs_alive == 0);
  }

  TEST_CASE("when_any yields the first to finish and stops and joins the losers") {
    test::Watchdog watchdog("when_any", 60s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Context& ctx = js.context();
      std::atomic<int> alive{0};
      const WhenAnyResult<int> result =
          sync_wait(js, when_any(ctx, spin_until_stopped(ctx, alive),
                                 value_after_yields(ctx, 42, 3), spin_until_stopped(ctx, alive)));
      CHECK(result.index == 1);
      CHECK(result.value == 42);
      CHECK(alive.load() == 0);  // every loser unwound before when_any completed

      std::vector<Task<int>> tasks;
      for (int i = 0; i < 8; ++i) tasks.push_back(spin_until_stopped(ctx, alive));
      tasks.push_back(value_after_yields(ctx, 7, 0));
      const WhenAnyResult<int> last = sync_wait(js, when_any(ctx, std::move(tasks)));
      CHECK(last.index == 8);
      CHECK(last.value == 7);
      CHECK(alive.load() == 0);
    }
  }

  TEST_CASE("when_any rethrows the winner's exception after the losers ended") {
    JobSystem js{test::config_with(2)};
    Context& ctx = js.context();
    std::atomic<int> alive{0};
    CHECK_THROWS_WITH_AS(sync_wait(js, when_any(ctx, spin_until_stopped(ctx, alive), fails_now())),
                         "winner failed", std::runtime_error);
    CHECK(alive.load() == 0);
    CHECK_THROWS_AS(sync_wait(js, when_any(ctx, std::vector<Task<int>>{})), Error);
  }
}
