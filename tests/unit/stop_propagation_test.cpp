// Stops reaching the whole structured tree (when_all, when_any and JobHandle children get the
// caller's token), value waits and parallel_for as cancellation points, and the misuse errors
// of JobHandle and of empty tasks. Each hang these tests guard against fails by the watchdog.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/cancellation.hpp"
#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

using test::is_cancelled;
using test::outcome_of;
using test::value_after_yields;

namespace {

constexpr std::uint32_t kSweep[] = {1, 2, 4};

/// A well-behaved cancellable loop: yields until its job's stop is requested (then the yield
/// throws Cancelled). Counts itself in `alive` while it runs.
Task<int> spinner(Context& ctx, std::atomic<int>& alive) {
  alive.fetch_add(1);
  struct Leave {
    std::atomic<int>& alive;
    ~Leave() { alive.fetch_sub(1); }
  } leave{alive};
  for (;;) co_await ctx.yield();
}

/// A racer that is itself a when_all over a spinner (docs' search(ctx, a) that fans out).
Task<int> composite_all(Context& ctx, std::atomic<int>& alive) {
  auto [a] = co_await when_all(ctx, spinner(ctx, alive));
  co_return a;
}

/// A racer that is itself a when_any over two spinners.
Task<int> composite_any(Context& ctx, std::atomic<int>& alive) {
  const WhenAnyResult<int> inner = co_await when_any(ctx, spinner(ctx, alive), spinner(ctx, alive));
  co_return inner.value;
}

/// Runs `body` as a coroutine job with `source`'s token, requests the stop once `started`
/// says the tree is running, and returns the error the job ended with (code of Cancelled).
template <class Body>
std::string run_then_stop(JobSystem& js, std::atomic<int>& started, int expected, Body body) {
  std::stop_source source;
  std::string outcome = "returned";
  Counter done;
  js.run(
      done,
      [&](Context& ctx) -> Task<> {
        try {
          co_await body(ctx);
        } catch (const Error& error) {
          outcome = outcome_of(error);
        }
      },
      source.get_token());
  while (started.load() < expected) std::this_thread::yield();
  source.request_stop();
  js.wait(done);
  return outcome;
}

/// One level of a chain of nested when_any calls, each over one racer: the next level, down
/// to a leaf that sets `ready` and then waits on `never` (a cancellation point). A stop of the
/// outermost race reaches the leaf through `depth` chained stop callbacks.
Task<int> nested_any(Context& ctx, int depth, Event& ready, Event& never,
                     std::atomic<int>& unwound) {
  struct Unwound {
    std::atomic<int>& count;
    ~Unwound() { count.fetch_add(1); }
  } note{unwound};
  if (depth == 0) {
    ready.set();
    co_await never;
    co_return 0;
  }
  const WhenAnyResult<int> inner =
      co_await when_any(ctx, nested_any(ctx, depth - 1, ready, never, unwound));
  co_return inner.value;
}

/// The racer that wins once the chain is built: its stop request runs on its own fiber.
Task<int> win_when(Event& ready) {
  co_await ready;
  co_return 9;
}

}  // namespace

TEST_SUITE("stop propagation") {
  TEST_CASE("a winner's stop crosses 2,000 nested when_any calls on one level of its stack") {
    // Each level's racers get a stop source chained to the level above by a stop callback, so
    // the winner's request_stop would run 2,000 nested callbacks, each requesting the next
    // level's stop, on the winner's fiber stack (Config::fiber_stack_size, 64 KiB): a stack
    // overflow. The stops are requested one after the other instead; every level unwinds.
    test::Watchdog watchdog("nested when_any chain", 120s);
    constexpr int kDepth = 2000;
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers, 16)};
      Context& ctx = js.context();
      Event ready;
      Event never;
      std::atomic<int> unwound{0};
      const WhenAnyResult<int> first = sync_wait(
          js, when_any(ctx, nested_any(ctx, kDepth, ready, never, unwound), win_when(ready)));
      CHECK(first.index == 1);
      CHECK(first.value == 9);
      CHECK(unwound.load() == kDepth + 1);  // every level ended before the call completed
    }
  }

  TEST_CASE("when_any completes when a loser is itself a when_all or a when_any") {
    test::Watchdog watchdog("when_any with composite losers", 120s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Context& ctx = js.context();
      std::atomic<int> alive{0};
      const WhenAnyResult<int> first =
          sync_wait(js, when_any(ctx, composite_all(ctx, alive), value_after_yields(ctx, 7, 10)));
      CHECK(first.index == 1);
      CHECK(first.value == 7);
      CHECK(alive.load() == 0);  // the grandchild unwound before when_any completed
      const WhenAnyResult<int> second =
          sync_wait(js, when_any(ctx, composite_any(ctx, alive), value_after_yields(ctx, 8, 10)));
      CHECK(second.index == 1);
      CHECK(second.value == 8);
      CHECK(alive.load() == 0);
    }
  }

  TEST_CASE("a stopped job awaiting when_all, when_any or a JobHandle unwinds its whole tree") {
    test::Watchdog watchdog("stop reaches structured children", 120s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::atomic<int> alive{0};
      CHECK(run_then_stop(js, alive, 2, [&](Context& ctx) -> Task<> {
              co_await when_all(ctx, spinner(ctx, alive), composite_all(ctx, alive));
            }) == "cancelled");
      CHECK(alive.load() == 0);
      CHECK(run_then_stop(js, alive, 3, [&](Context& ctx) -> Task<> {
              co_await when_any(ctx, spinner(ctx, alive), composite_any(ctx, alive));
            }) == "cancelled");
      CHECK(alive.load() == 0);
      CHECK(run_then_stop(js, alive, 1, [&](Context& ctx) -> Task<> {
              JobHandle<int> handle;
              handle.spawn(ctx, spinner(ctx, alive));
              co_await handle;
            }) == "cancelled");
      CHECK(alive.load() == 0);
    }
  }

  TEST_CASE("a plain job's JobHandle child gets the job's stop, and get() unwinds") {
    test::Watchdog watchdog("JobHandle::get in a stopped plain job", 60s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::atomic<int> alive{0};
      std::stop_source source;
      bool cancelled = false;
      Counter done;
      js.run(
          done,
          [&](Context& ctx) {
            JobHandle<int> handle;
            handle.spawn(ctx, spinner(ctx, alive));
            try {
              handle.get(ctx.system());
            } catch (const Error& error) {
              cancelled = is_cancelled(error);
            }
          },
          source.get_token());
      while (alive.load() < 1) std::this_thread::yield();
      source.request_stop();
      js.wait(done);
      CHECK(cancelled);
      CHECK(alive.load() == 0);
    }
  }

  TEST_CASE("when_all children see the caller's token; a stop before the call still joins them") {
    test::Watchdog watchdog("when_all after the stop", 60s);
    JobSystem js{test::config_with(2)};
    std::stop_source source;
    std::atomic<int> with_token{0};
    std::atomic<int> alive{0};
    auto probe = [&](Context& ctx) -> Task<int> {
      if (ctx.stop_token() == source.get_token()) with_token.fetch_add(1);
      co_return 1;
    };
    std::string outcome;
    Counter done;
    js.run(
        done,
        [&](Context& ctx) -> Task<> {
          auto [a, b] = co_await when_all(ctx, probe(ctx), probe(ctx));
          CHECK(a + b == 2);
          source.request_stop();
          try {
            co_await when_all(ctx, spinner(ctx, alive), spinner(ctx, alive));
            outcome = "returned";
          } catch (const Error& error) {
            outcome = outcome_of(error);
          }
          CHECK(alive.load() == 0);  // joined before the Cancelled reached us
        },
        source.get_token());
    js.wait(done);
    CHECK(with_token.load() == 2);
    CHECK(outcome == "cancelled");
  }

  TEST_CASE("value waits are cancellation points, coroutine and plain") {
    test::Watchdog watchdog("value waits and stops", 60s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::stop_source stopped;
      stopped.request_stop();
      Counter five;
      five.add(5);
      std::string coroutine_before;
      std::string plain_before;
      Counter done;
      js.run(
          done,
          [&](Context& ctx) -> Task<> {
            try {
              co_await ctx.wait(five, 3);
              coroutine_before = "returned";
            } catch (const Error& error) {
              coroutine_before = outcome_of(error);
            }
          },
          stopped.get_token());
      js.run(
          done,
          [&] {
            try {
              this_fiber::wait(five, 3);
              plain_before = "returned";
            } catch (const Error& error) {
              plain_before = error.what();
            }
          },
          stopped.get_token());
      js.wait(done);
      CHECK(coroutine_before == "cancelled");
      CHECK(plain_before.find("this_fiber::wait(counter, target)") != std::string::npos);

      // Stop requested while suspended, then the count reaches the target: Cancelled.
      std::stop_source later;
      std::atomic<int> waiting{0};
      std::string coroutine_during;
      std::string plain_during;
      js.run(
          done,
          [&](Context& ctx) -> Task<> {
            waiting.fetch_add(1);
            try {
              co_await ctx.wait(five, 3);
              coroutine_during = "returned";
            } catch (const Error& error) {
              coroutine_during = outcome_of(error);
            }
          },
          later.get_token());
      if (workers > 1) {  // a plain job suspended holds its worker's fiber, not the worker
        js.run(
            done,
            [&] {
              waiting.fetch_add(1);
              try {
                this_fiber::wait(five, 3);
                plain_during = "returned";
              } catch (const Error& error) {
                plain_during = outcome_of(error);
              }
            },
            later.get_token());
      }
      while (waiting.load() < (workers > 1 ? 2 : 1)) std::this_thread::yield();
      later.request_stop();
      five.signal();
      five.signal();  // 3: the target is met, the waits resume
      js.wait(done);
      CHECK(coroutine_during == "cancelled");
      if (workers > 1) CHECK(plain_during == "cancelled");
      for (int i = 0; i < 3; ++i) five.signal();
    }
  }

  TEST_CASE("parallel_for in a stopped job runs nothing, or stops handing out batches") {
    test::Watchdog watchdog("parallel_for and stops", 60s);
    for (std::uint32_t workers : kSweep) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      constexpr int kTotal = 100'000;
      std::stop_source stopped;
      stopped.request_stop();
      std::atomic<int> ran{0};
      std::string forms[3];
      Counter done;
      js.run(
          done,
          [&](Context& ctx) {
            try {
              parallel_for(ctx, 0, kTotal, 0, [&](int) { ran.fetch_add(1); });
            } catch (const Error& error) {
              forms[0] = error.what();
            }
            try {
              parallel_for(ctx.system(), 0, kTotal, 0, [&](int) { ran.fetch_add(1); });
            } catch (const Error& error) {
              forms[1] = error.what();
            }
          },
          stopped.get_token());
      js.run(
          done,
          [&](Context& ctx) -> Task<> {
            try {
              co_await parallel_for_async(ctx, 0, kTotal, 0, [&](int) { ran.fetch_add(1); });
            } catch (const Error& error) {
              forms[2] = error.what();
            }
          },
          stopped.get_token());
      js.wait(done);
      CHECK(ran.load() == 0);
      for (const std::string& message : forms) {
        CAPTURE(message);
        CHECK(message.find("parallel_for") != std::string::npos);
        CHECK(message.find("JobSystem::wait") == std::string::npos);
      }

      // A stop requested by the first index run: the batches not yet started skip theirs.
      std::stop_source during;
      std::atomic<int> executed{0};
      std::string message;
      js.run(
          done,
          [&](Context& ctx) {
            try {
              parallel_for(ctx, 0, kTotal, 1, [&](int) {
                executed.fetch_add(1);
                during.request_stop();
              });
            } catch (const Error& error) {
              message = outcome_of(error);
            }
          },
          during.get_token());
      js.wait(done);
      CHECK(message == "cancelled");
      CHECK(executed.load() >= 1);
      CHECK(executed.load() < kTotal / 2);
    }
  }

  TEST_CASE("JobHandle get or co_await without a result is an error naming the mistake") {
    test::Watchdog watchdog("JobHandle misuse", 60s);
    JobSystem js{test::config_with(2)};
    Context& ctx = js.context();
    auto code_of = [](auto&& call) {
      try {
        call();
      } catch (const Error& error) {
        CHECK(std::string(error.what()).find("JobHandle") != std::string::npos);
        return error.code();
      }
      return ErrorCode::InvalidConfig;  // nothing thrown: fails the CHECKs below
    };
    JobHandle<std::string> never;
    CHECK(code_of([&] { (void)never.get(js); }) == ErrorCode::CounterMisuse);
    JobHandle<std::string> twice;
    twice.spawn(js, [](std::string s) -> Task<std::string> { co_return s; }(std::string(100, 'v')));
    CHECK(twice.get(js) == std::string(100, 'v'));
    CHECK(code_of([&] { (void)twice.get(js); }) == ErrorCode::CounterMisuse);
    twice.spawn(js, []() -> Task<std::string> {
      throw std::runtime_error("job failed");
      co_return std::string();
    }());
    CHECK_THROWS_WITH_AS(twice.get(js), "job failed", std::runtime_error);
    CHECK(code_of([&] { (void)twice.get(js); }) == ErrorCode::CounterMisuse);
    twice.spawn(js, [](std::string s) -> Task<std::string> { co_return s; }("again"));
    CHECK(twice.get(js) == "again");  // reusable once the result was taken

    std::vector<ErrorCode> codes;
    sync_wait(js, [&]() -> Task<> {
      JobHandle<int> empty;
      try {
        (void)co_await empty;
      } catch (const Error& error) {
        codes.push_back(error.code());
      }
      JobHandle<int> used;
      used.spawn(ctx, value_after_yields(ctx, 5, 1));
      CHECK(co_await used == 5);
      try {
        (void)co_await used;
      } catch (const Error& error) {
        codes.push_back(error.code());
      }
    }());
    CHECK(codes == std::vector<ErrorCode>{ErrorCode::CounterMisuse, ErrorCode::CounterMisuse});
  }

  TEST_CASE("an empty (moved-from) Task is an error in every call that runs tasks") {
    test::Watchdog watchdog("empty tasks", 60s);
    JobSystem js{test::config_with(2)};
    Context& ctx = js.context();
    auto moved_from = [&] {
      Task<int> task = value_after_yields(ctx, 1, 0);
      Task<int> keep = std::move(task);
      return task;  // empty
    };
    auto is_invalid_argument = [](auto&& call, const char* name) {
      try {
        call();
      } catch (const Error& error) {
        CAPTURE(error.what());
        CHECK(std::string(error.what()).find(name) != std::string::npos);
        return error.code() == ErrorCode::InvalidArgument;
      }
      return false;
    };
    CHECK(is_invalid_argument([&] { sync_wait(js, moved_from()); }, "sync_wait"));
    CHECK(is_invalid_argument(
        [&] { sync_wait(js, when_all(ctx, value_after_yields(ctx, 1, 0), moved_from())); },
        "when_all"));
    std::vector<Task<int>> tasks;
    tasks.push_back(moved_from());
    CHECK(is_invalid_argument([&] { sync_wait(js, when_all(ctx, std::move(tasks))); }, "when_all"));
    CHECK(is_invalid_argument(
        [&] { sync_wait(js, when_any(ctx, value_after_yields(ctx, 1, 0), moved_from())); },
        "when_any"));
    JobHandle<int> handle;
    CHECK(is_invalid_argument([&] { handle.spawn(js, moved_from()); }, "JobHandle::spawn"));
    CHECK(is_invalid_argument(
        [&] {
          sync_wait(js, [&]() -> Task<int> {
            Task<int> empty = moved_from();
            co_return co_await empty;
          }());
        },
        "co_await task"));
  }
}
