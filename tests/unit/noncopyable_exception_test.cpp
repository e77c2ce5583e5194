// Exceptions of types that cannot be copied: a move-only type, and a type with
// deleted copy and move constructors. Thrown from plain jobs, coroutine jobs, child jobs and
// child tasks, they must reach every waiter with their payload intact, and several on one
// counter keep the first and count the rest, as for any exception.
//
// What makes this work, and where it stops: fiberjob keeps a job's exception as the
// std::exception_ptr of std::current_exception() and hands it to waiters with
// std::rethrow_exception. Whether current_exception() copies the object is up to the
// implementation ([propagation]); libstdc++ (and libc++) never copy: the exception_ptr refers
// to the thrown object itself, so fiberjob needs neither a copy nor a move. These tests pin that
// down: what a waiter catches is the very object the job threw (`PinnedError::self`), and every
// waiter of a counter catches the same object, so handlers must catch by reference and must not
// modify it while others may be handling it. The core language is stricter than the compilers:
// since CWG 1863 (C++17) throwing a class whose copy constructor is deleted is ill-formed, a rule
// that g++ 12 and clang 14 do not enforce (-Wall -Wextra -Wpedantic stay silent). Such code
// builds and works with this toolchain, but it is not portable (an implementation that copies
// exception objects, as MSVC's does, needs the copy constructor).

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

/// Objects of the two exception types alive right now: each exception must be destroyed once
/// no counter and no waiter holds it any more (no leak, no double destruction).
std::atomic<int> g_alive{0};

/// Move-only: the payload is a unique_ptr.
struct MoveOnlyError {
  explicit MoveOnlyError(int value) : payload(std::make_unique<int>(value)) { ++g_alive; }
  MoveOnlyError(MoveOnlyError&& other) noexcept : payload(std::move(other.payload)) { ++g_alive; }
  MoveOnlyError(const MoveOnlyError&) = delete;
  MoveOnlyError& operator=(const MoveOnlyError&) = delete;
  MoveOnlyError& operator=(MoveOnlyError&&) = delete;
  ~MoveOnlyError() { --g_alive; }

  std::unique_ptr<int> payload;
};

/// Neither copyable nor movable: thrown as a prvalue (the copy is elided). `self` is the address
/// it was constructed at, so a catcher can tell that it holds the object the job threw.
struct PinnedError {
  explicit PinnedError(std::string text) : message(std::move(text)), self(this) { ++g_alive; }
  PinnedError(const PinnedError&) = delete;
  PinnedError(PinnedError&&) = delete;
  PinnedError& operator=(const PinnedError&) = delete;
  PinnedError& operator=(PinnedError&&) = delete;
  ~PinnedError() { --g_alive; }

  std::string message;
  const PinnedError* self;
};

/// What a waiter caught: the payload, and the address of the object (to compare catches).
struct Caught {
  bool caught = false;
  int payload = -1;        ///< MoveOnlyError::payload, or -1
  std::string message;     ///< PinnedError::message
  bool at_origin = false;  ///< PinnedError: caught at the address it was constructed at
  const void* address = nullptr;
};

/// Runs `wait` and reports the MoveOnlyError or PinnedError it throws (nothing caught for any
/// other outcome).
template <class Wait>
Caught catch_from(Wait&& wait) {
  Caught c;
  try {
    wait();
  } catch (const MoveOnlyError& e) {
    c.caught = true;
    c.payload = e.payload ? *e.payload : -1;
    c.address = &e;
  } catch (const PinnedError& e) {
    c.caught = true;
    c.message = e.message;
    c.at_origin = e.self == &e;
    c.address = &e;
  } catch (...) {
  }
  return c;
}

/// A child task that fails at once with an exception that cannot be copied or moved.
Task<int> pinned_child() {
  throw PinnedError("from a child task");
  co_return 0;
}

/// A child task that yields (and may move to another worker), then fails with a move-only one.
Task<int> move_only_child(Context& ctx) {
  co_await ctx.yield();  // may continue on another worker before it throws
  throw MoveOnlyError(11);
  co_return 0;
}

}  // namespace

TEST_SUITE("exceptions") {
  TEST_CASE("a move-only exception from a plain job reaches every wait with its payload") {
    test::Watchdog watchdog("move-only exception", 60s);
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      {
        JobSystem js{test::config_with(workers)};
        Counter done;
        std::atomic<int> ran{0};
        for (int i = 0; i < 20; ++i) {
          js.run(done, [&ran, i] {
            ran.fetch_add(1);
            if (i == 13) throw MoveOnlyError(7);
          });
        }
        const Caught first = catch_from([&] { js.wait(done); });
        CHECK(first.caught);
        CHECK(first.payload == 7);
        CHECK(ran.load() == 20);
        // Every wait rethrows it: the same object, not a copy.
        const Caught second = catch_from([&] { js.wait(done); });
        CHECK(second.payload == 7);
        CHECK(second.address == first.address);
        CHECK(g_alive.load() == 1);  // held by the counter only
        // A new round forgets it, and the object is destroyed.
        js.run(done, [] {});
        CHECK_NOTHROW(js.wait(done));
        CHECK(g_alive.load() == 0);
      }
      CHECK(g_alive.load() == 0);
    }
  }

  TEST_CASE("an exception that can be neither copied nor moved reaches the waiter as thrown") {
    test::Watchdog watchdog("pinned exception", 60s);
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Counter done;
      js.run(done, [] { throw PinnedError("from a plain job"); });
      const Caught c = catch_from([&] { js.wait(done); });
      CHECK(c.caught);
      CHECK(c.message == "from a plain job");
      CHECK(c.at_origin);
      js.run(done, [] {});
      js.wait(done);
      CHECK(g_alive.load() == 0);
    }
  }

  TEST_CASE("non-copyable exceptions from coroutine jobs reach JobSystem::wait and co_await") {
    test::Watchdog watchdog("non-copyable exception, coroutine job", 60s);
    JobSystem js{test::config_with(2)};
    {
      Counter done;
      js.run(done, [](Context& ctx) -> Task<> {
        co_await ctx.yield();
        throw PinnedError("from a coroutine job");
      });
      const Caught c = catch_from([&] { js.wait(done); });
      CHECK(c.message == "from a coroutine job");
      CHECK(c.at_origin);
    }
    CHECK(g_alive.load() == 0);  // the counter died with its exception

    // A coroutine job waits for a plain child job that throws a move-only exception.
    Caught in_job;
    Counter done;
    js.run(done, [&in_job](Context& ctx) -> Task<> {
      Counter children;
      ctx.spawn(children, [] { throw MoveOnlyError(3); });
      try {
        co_await ctx.wait(children);
      } catch (const MoveOnlyError& e) {
        in_job.caught = true;
        in_job.payload = *e.payload;
      }
    });
    CHECK_NOTHROW(js.wait(done));  // handled inside the job
    CHECK(in_job.caught);
    CHECK(in_job.payload == 3);
    CHECK(g_alive.load() == 0);
  }

  TEST_CASE("non-copyable exceptions from child tasks and child jobs reach the parent") {
    test::Watchdog watchdog("non-copyable exception, children", 60s);
    JobSystem js{test::config_with(2)};
    Caught from_task;
    Caught from_job;
    Counter done;
    // A child Task's exception reaches the parent's co_await.
    js.run(done, [&from_task](Context&) -> Task<> {
      try {
        (void)co_await pinned_child();
      } catch (const PinnedError& e) {
        from_task.caught = true;
        from_task.message = e.message;
        from_task.at_origin = e.self == &e;
      }
    });
    // A plain child job's exception reaches the parent's this_fiber::wait.
    js.run(done, [&from_job](Context& ctx) {
      Counter children;
      ctx.spawn(children, [] { throw PinnedError("from a child job"); });
      from_job = catch_from([&] { this_fiber::wait(children); });
    });
    js.wait(done);
    CHECK(from_task.message == "from a child task");
    CHECK(from_task.at_origin);
    CHECK(from_job.message == "from a child job");
    CHECK(from_job.at_origin);

    // Not handled by the parent: it leaves the coroutine job and reaches JobSystem::wait.
    js.run(done, [](Context& ctx) -> Task<> { (void)co_await move_only_child(ctx); });
    const Caught c = catch_from([&] { js.wait(done); });
    CHECK(c.payload == 11);
    js.run(done, [] {});
    js.wait(done);
    CHECK(g_alive.load() == 0);
  }

  TEST_CASE("several non-copyable exceptions on one counter: the first is kept, the rest counted") {
    test::Watchdog watchdog("several non-copyable exceptions", 60s);
    JobSystem js{test::config_with(2)};
    Counter done;
    for (int i = 0; i < 5; ++i) js.run(done, [i] { throw MoveOnlyError(i); });
    for (int i = 0; i < 3; ++i) {
      js.run(done, [](Context& ctx) -> Task<> {
        co_await ctx.yield();
        throw PinnedError("coroutine");
      });
    }
    const Caught c = catch_from([&] { js.wait(done); });
    CHECK(c.caught);
    CHECK(((c.payload >= 0 && c.payload < 5) || c.message == "coroutine"));
    CHECK(done.dropped_exceptions() == 7);
    CHECK(g_alive.load() == 1);  // the dropped ones are already destroyed
    js.run(done, [] {});
    CHECK_NOTHROW(js.wait(done));
    CHECK(done.dropped_exceptions() == 0);
    CHECK(g_alive.load() == 0);
  }
}
