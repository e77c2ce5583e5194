// Structured concurrency: sync_wait, when_all (variadic and vector, nested, with exceptions),
// JobHandle<T>, and the join of a counter destroyed while its jobs are pending.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "counter_join.hpp"
#include "support/captured_stderr.hpp"
#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

constexpr std::uint32_t kSweep[] = {1, 2, 4};

Task<int> square(int x) { co_return x* x; }

Task<std::string> greet(std::string name) { co_return "hello " + name; }

Task<void> bump(std::atomic<int>& n) {
  n.fetch_add(1);
  co_return;
}

Task<int> fails(std::string what) {
  throw std::runtime_error(what);
  co_return 0;
}

/// Signals its counter when destroyed: releases a job from inside an unwinding scope.
struct SignalOnExit {
  Counter& counter;
  ~SignalOnExit() { counter.signal(); }
};

/// Leaves its scope by throwing std::logic_error(`what`) while the job that `spawn(children,
/// job)` queued on that scope's counter still waits for the scope's gate; the gate opens in the
/// unwinding, and the counter's end must join the job (which then counts itself in `finished`).
template <typename Spawn>
[[noreturn]] void throw_with_pending_child(Spawn spawn, std::atomic<int>& finished,
                                           const char* what) {
  Counter gate;
  gate.add(1);
  Counter children;
  spawn(children, [&] {
    this_fiber::wait(gate);
    finished.fetch_add(1);
  });
  const SignalOnExit release{gate};
  throw std::logic_error(what);
}

/// Records std::uncaught_exceptions() when destroyed.
struct UncaughtProbe {
  int& out;
  ~UncaughtProbe() { out = std::uncaught_exceptions(); }
};

/// Every worker runs jobs that record whether the thread believes an exception is in flight.
int jobs_seeing_uncaught(JobSystem& js) {
  std::atomic<int> seen{0};
  Counter done;
  for (int i = 0; i < 2000; ++i) {
    js.run(done, [&seen] {
      if (std::uncaught_exceptions() != 0) seen.fetch_add(1);
    });
  }
  js.wait(done);
  return seen.load();
}

Task<int> sum_tree(Context& ctx, int depth) {
  if (depth == 0) co_return 1;
  auto [a, b] = co_await when_all(ctx, sum_tree(ctx, depth - 1), sum_tree(ctx, depth - 1));
  co_return a + b;
}

/// Opens `gate` once stderr holds the join notice naming the counter at `joined` (set by the
/// joining code before its counter's scope ends), with its pending units.
void open_on_join_notice(const test::CapturedStderr& captured,
                         const std::atomic<const void*>& joined, Counter& gate) {
  for (;;) {
    if (const void* counter = joined.load()) {
      char expected[96];
      std::snprintf(expected, sizeof expected, "Counter %p was destroyed while 1 unit(s)", counter);
      const std::string text = captured.text();
      if (text.find(expected) != std::string::npos &&
          text.find("make sure every job it counts ends") != std::string::npos) {
        break;
      }
    }
    std::this_thread::sleep_for(1ms);
  }
  gate.signal();
}

/// A* stand-in: a job that returns a path (a list of cells).
Task<std::vector<int>> find_path(int from, int to) {
  std::vector<int> path;
  for (int cell = from; cell <= to; ++cell) path.push_back(cell);
  co_return path;
}

}  // namespace

TEST_SUITE("structured") {
  TEST_CASE("sync_wait returns a task's value to main, with 1 and 2 workers") {
    test::Watchdog watchdog("sync_wait values", 60s);
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      CHECK(sync_wait(js, square(7)) == 49);
      CHECK(sync_wait(js, greet("main")) == "hello main");
      std::atomic<int> n{0};
      sync_wait(js, bump(n));
      CHECK(n.load() == 1);
      for (int i = 0; i < 200; ++i) CHECK(sync_wait(js, square(i)) == i * i);
    }
  }

  TEST_CASE("sync_wait rethrows the task's exception on the calling thread") {
    JobSystem js{test::config_with(2)};
    CHECK_THROWS_WITH_AS(sync_wait(js, fails("boom")), "boom", std::runtime_error);
    CHECK(sync_wait(js, square(3)) == 9);  // the system goes on
  }

  TEST_CASE("sync_wait from a job is an error naming what to use instead") {
    JobSystem js{test::config_with(1)};
    bool threw = false;
    Counter done;
    js.run(done, [&js, &threw] {
      try {
        (void)sync_wait(js, square(2));
      } catch (const Error& error) {
        threw = error.code() == ErrorCode::BlockingCallInJob &&
                std::string(error.what()).find("JobHandle") != std::string::npos;
      }
    });
    js.wait(done);
    CHECK(threw);
  }

  TEST_CASE("sync_wait from a job an attached thread runs is an error, as from any job") {
    Config config = test::config_with(1);
    config.attachable_threads = 1;
    JobSystem js{config};
    AttachedWorker attached(js);
    std::atomic<int> rejected{0};
    auto job = [&js, &rejected] {
      try {
        (void)sync_wait(js, square(2));
      } catch (const Error& error) {
        if (error.code() == ErrorCode::BlockingCallInJob) rejected.fetch_add(1);
      }
    };
    Counter done;
    attached.spawn(done, job);
    CHECK(attached.run_pending() == 1);  // on the thread's own stack
    CHECK(rejected.load() == 1);
    attached.spawn(done, job);  // run by the thread while it waits below
    js.run(done, job);          // onto this thread's deque: run inline by its wait, or stolen
    const AttachedThread thread(attached);
    js.run(done, [thread, &done, &job] { thread.spawn(done, job); });  // sent from a job
    js.wait(done);
    CHECK(rejected.load() == 4);
    CHECK(sync_wait(js, square(3)) == 9);  // the thread's own code, outside jobs, may block
  }

  TEST_CASE("sync_wait on an attached thread runs jobs meanwhile") {
    Config config = test::config_with(1);
    config.attachable_threads = 1;
    JobSystem js{config};
    AttachedWorker attached(js);
    CHECK(sync_wait(js, sum_tree(js.context(), 6)) == 64);
  }

  TEST_CASE("when_all yields every child's value in argument order, void as Unit") {
    test::Watchdog watchdog("when_all values", 60s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::atomic<int> n{0};
      auto [a, b, c] = sync_wait(js, when_all(js.context(), square(5), greet("all"), bump(n)));
      CHECK(a == 25);
      CHECK(b == "hello all");
      CHECK(c == Unit{});
      CHECK(n.load() == 1);
      CHECK(sync_wait(js, when_all(js.context())) == std::tuple<>{});
    }
  }

  TEST_CASE("when_all runs its children as parallel jobs, not one after the other") {
    // Each child waits until both have started: awaited one after the other, the first would
    // wait forever (the watchdog would fire). Holds on one worker too: they are separate jobs.
    test::Watchdog watchdog("when_all parallel", 60s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Counter started;
      started.add(2);
      auto child = [](Context& ctx, Counter& both, int value) -> Task<int> {
        both.signal();
        co_await ctx.wait(both);
        co_return value;
      };
      Context& ctx = js.context();
      auto [x, y] = sync_wait(js, when_all(ctx, child(ctx, started, 1), child(ctx, started, 2)));
      CHECK(x == 1);
      CHECK(y == 2);
    }
  }

  TEST_CASE("when_all lets every child finish when one throws, then rethrows the first") {
    test::Watchdog watchdog("when_all exceptions", 60s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::atomic<bool> slow_finished{false};
      auto slow = [](Context& ctx, std::atomic<bool>& finished) -> Task<int> {
        for (int i = 0; i < 50; ++i) co_await ctx.yield();
        finished.store(true);
        co_return 1;
      };
      Context& ctx = js.context();
      bool finished_before_rethrow = false;
      try {
        (void)sync_wait(js, when_all(ctx, fails("first"), slow(ctx, slow_finished)));
      } catch (const std::runtime_error& error) {
        CHECK(std::string(error.what()) == "first");
        finished_before_rethrow = slow_finished.load();
      }
      CHECK(finished_before_rethrow);
    }
  }

  TEST_CASE("nested when_all sums a tree of parallel children") {
    test::Watchdog watchdog("nested when_all", 120s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      CHECK(sync_wait(js, sum_tree(js.context(), 10)) == 1024);
    }
  }

  TEST_CASE("when_all over a vector yields the values in order; void gives Units") {
    test::Watchdog watchdog("when_all vector", 60s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::vector<Task<int>> tasks;
      for (int i = 0; i < 300; ++i) tasks.push_back(square(i));
      const std::vector<int> values = sync_wait(js, when_all(js.context(), std::move(tasks)));
      REQUIRE(values.size() == 300);
      for (int i = 0; i < 300; ++i) CHECK(values[static_cast<std::size_t>(i)] == i * i);
      std::atomic<int> n{0};
      std::vector<Task<void>> voids;
      for (int i = 0; i < 40; ++i) voids.push_back(bump(n));
      CHECK(sync_wait(js, when_all(js.context(), std::move(voids))).size() == 40);
      CHECK(n.load() == 40);
      CHECK(sync_wait(js, when_all(js.context(), std::vector<Task<int>>{})).empty());
    }
  }

  TEST_CASE("a JobHandle delivers a spawned job's value to a coroutine and to plain code") {
    test::Watchdog watchdog("JobHandle", 60s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::vector<int> awaited;
      std::vector<int> got;
      bool rethrown = false;
      Counter done;
      js.run(done, [&](Context& ctx) -> Task<> {
        JobHandle<std::vector<int>> path;
        path.spawn(ctx, find_path(3, 7));
        awaited = co_await path;
        path.spawn(ctx, find_path(1, 2));  // reusable once the value was taken
        awaited.push_back(static_cast<int>((co_await path).size()));
        JobHandle<int> broken;
        broken.spawn(ctx, fails("no path"));
        try {
          (void)co_await broken;
        } catch (const std::runtime_error&) {
          rethrown = true;
        }
      });
      js.run(done, [&](Context& ctx) {
        JobHandle<std::vector<int>> path;
        path.spawn(ctx, find_path(0, 2));
        got = path.get(ctx.system());  // plain job: the fiber waits
      });
      js.wait(done);
      CHECK(awaited == std::vector<int>{3, 4, 5, 6, 7, 2});
      CHECK(got == std::vector<int>{0, 1, 2});
      CHECK(rethrown);
      JobHandle<int> from_main;
      from_main.spawn(js, square(9));
      CHECK(from_main.get(js) == 81);
    }
  }

  TEST_CASE("JobHandle::spawn while the previous job runs is an error") {
    JobSystem js{test::config_with(1)};
    Counter gate;
    gate.add(1);
    JobHandle<int> handle;
    handle.spawn(js, [](Counter& g) -> Task<int> {
      co_await g;
      co_return 1;
    }(gate));
    try {
      handle.spawn(js, square(1));
      FAIL("no error");
    } catch (const Error& error) {
      CHECK(error.code() == ErrorCode::CounterMisuse);
    }
    gate.signal();
    CHECK(handle.get(js) == 1);
  }

  TEST_CASE("the issue's example delivers the exception to the waiter instead of aborting") {
    test::Watchdog watchdog("exception-safe join", 60s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Counter gate;  // holds `other` until the coroutine is unwinding
      gate.add(1);
      std::atomic<bool> other_finished{false};
      bool finished_when_joined = false;
      int uncaught_after_join = -1;
      Counter done;
      js.run(done, [&](Context& ctx) -> Task<> {
        // Destroyed in reverse order: `release` opens the gate, `other` joins its job, then
        // `check` and `probe` look at the state after the join.
        const UncaughtProbe probe{uncaught_after_join};
        struct Check {
          std::atomic<bool>& finished;
          bool& out;
          ~Check() { out = finished.load(); }
        } check{other_finished, finished_when_joined};
        Counter risky, other;
        ctx.spawn(risky, [] { throw std::runtime_error("x"); });
        ctx.spawn(other, [&] {
          this_fiber::wait(gate);
          other_finished.store(true);
        });
        const SignalOnExit release{gate};
        co_await ctx.wait(risky);  // rethrows; `other` is still pending here
      });
      CHECK_THROWS_WITH_AS(js.wait(done), "x", std::runtime_error);
      CHECK(finished_when_joined);
      CHECK(uncaught_after_join == 1);  // the unwinding exception is still in flight
      CHECK(jobs_seeing_uncaught(js) == 0);
    }
  }

  TEST_CASE("a join that resumes on another worker moves the in-flight exception's state") {
    // The joining coroutine suspends mid-unwind; `other` is released by this thread, so it
    // ends (and wakes the joiner) on whichever worker took it: often another one. The thread
    // that resumes the joiner must then own the in-flight exception (std::uncaught_exceptions
    // is per thread), and the thread it left must not.
    test::Watchdog watchdog("join across workers", 120s);
    JobSystem js{test::config_with(2)};
    for (int round = 0; round < 200; ++round) {
      CAPTURE(round);
      Counter gate;
      gate.add(1);
      std::atomic<bool> unwinding{false};
      int uncaught_after_join = -1;
      Counter done;
      js.run(done, [&](Context& ctx) -> Task<> {
        const UncaughtProbe probe{uncaught_after_join};
        Counter other;
        ctx.spawn(other, [&gate] { this_fiber::wait(gate); });
        struct Flag {
          std::atomic<bool>& flag;
          ~Flag() { flag.store(true); }
        } flag{unwinding};
        co_await ctx.yield();
        throw std::runtime_error("y");
      });
      while (!unwinding.load()) std::this_thread::yield();
      gate.signal();
      CHECK_THROWS_WITH_AS(js.wait(done), "y", std::runtime_error);
      CHECK(uncaught_after_join == 1);
    }
    CHECK(jobs_seeing_uncaught(js) == 0);
  }

  TEST_CASE("a plain job and a plain thread leaving a scope by an exception join its jobs") {
    test::Watchdog watchdog("exception-safe join, stackful", 60s);
    JobSystem js{test::config_with(2)};
    std::atomic<int> finished{0};
    Counter done;
    js.run(done, [&](Context& ctx) {
      throw_with_pending_child([&](Counter& children, auto job) { ctx.spawn(children, job); },
                               finished, "plain job");
    });
    CHECK_THROWS_WITH_AS(js.wait(done), "plain job", std::logic_error);
    CHECK(finished.load() == 1);
    try {
      throw_with_pending_child([&](Counter& children, auto job) { js.run(children, job); },
                               finished, "plain thread");
    } catch (const std::logic_error&) {
      CHECK(finished.load() == 2);  // joined before the catch
    }
    CHECK(jobs_seeing_uncaught(js) == 0);
  }

  TEST_CASE("a join that waits long writes a notice naming the counter, then goes on waiting") {
    // The gate the counted job waits on opens only once the notice is on stderr: without it
    // the join would never return (the watchdog then fails the test).
    test::Watchdog watchdog("join notice", 60s);
    test::CapturedStderr captured;
    const std::uint32_t before = detail::set_join_notice_after_ms(10);
    JobSystem js{test::config_with(2)};
    {  // on a plain thread: the thread parks
      Counter gate;
      gate.add(1);
      std::atomic<const void*> joined{nullptr};
      std::thread opener([&] { open_on_join_notice(captured, joined, gate); });
      {
        Counter children;
        js.run(children, [&gate] { this_fiber::wait(gate); });
        joined.store(&children);
      }  // ~Counter joins here
      opener.join();
    }
    detail::set_join_notice_after_ms(10);  // once more: the notice is written once
    {  // on a fiber: a plain job's scope ends while the job it spawned waits on the gate
      Counter gate;
      gate.add(1);
      std::atomic<const void*> joined{nullptr};
      std::thread opener([&] { open_on_join_notice(captured, joined, gate); });
      Counter done;
      js.run(done, [&](Context& ctx) {
        Counter children;
        ctx.spawn(children, [&gate] { this_fiber::wait(gate); });
        joined.store(&children);
      });
      js.wait(done);
      opener.join();
    }
    detail::set_join_notice_after_ms(before);
  }
}
