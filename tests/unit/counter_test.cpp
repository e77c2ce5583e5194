// Counter: manual units, thread waiters, reuse, misuse.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

#include "counter_wait_list.hpp"
#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

TEST_SUITE("counter") {
  TEST_CASE("a new counter is done; add and signal move it") {
    Counter counter;
    CHECK(counter.done());
    counter.add(2);
    CHECK(counter.pending() == 2);
    counter.signal();
    CHECK_FALSE(counter.done());
    counter.signal();
    CHECK(counter.done());
  }

  TEST_CASE("adding a non-positive amount throws CounterMisuse") {
    Counter counter;
    CHECK_THROWS_AS(counter.add(0), Error);
    try {
      counter.add(-3);
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::CounterMisuse);
    }
    CHECK(counter.done());
  }

  TEST_CASE("waiting on a done counter returns at once, from a thread and from a job") {
    JobSystem js{test::config_with(2)};
    Counter idle;
    js.wait(idle);
    const auto before = js.stats().fiber_switches;
    Counter done;
    js.run(done, [&idle] { this_fiber::wait(idle); });
    js.wait(done);
    CHECK(js.stats().fiber_switches == before);  // no suspension, so no switch
  }

  TEST_CASE("units added while the final signaller drains never make a second drainer") {
    // Two threads each add a unit and remove it, so the count keeps touching zero and passing
    // through the drain while the other adds: a signal that takes "drain + 1" back to "drain"
    // must not think it is the final one (that drained twice and corrupted the count).
    test::Watchdog watchdog("add during drain", 60s);
    Counter counter;
    std::atomic<bool> go{false};
    auto hammer = [&] {
      while (!go.load()) {
      }
      for (int i = 0; i < 1'000'000; ++i) {
        counter.add(1);
        counter.signal();
      }
    };
    std::thread a(hammer);
    std::thread b(hammer);
    go.store(true);
    a.join();
    b.join();
    CHECK(counter.pending() == 0);
    CHECK(counter.done());
  }

  TEST_CASE("many plain threads waiting on one counter all wake on the last signal") {
    test::Watchdog watchdog("thread waiters", 60s);
    JobSystem js{test::config_with(2)};
    for (int round = 0; round < 50; ++round) {
      Counter gate;
      gate.add(1);
      std::atomic<int> woke{0};
      std::vector<std::thread> threads;
      for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
          js.wait(gate);
          woke.fetch_add(1);
        });
      }
      Counter done;
      js.run(done, [&gate] { gate.signal(); });  // the last unit is removed by a job
      js.wait(done);
      for (auto& t : threads) t.join();
      CHECK(woke.load() == 4);
    }
  }

  TEST_CASE("fiber and thread waiters on one counter are all woken once") {
    test::Watchdog watchdog("mixed waiters", 60s);
    JobSystem js{test::config_with(4)};
    Counter gate;
    gate.add(1);
    std::atomic<int> fibers_woken{0};
    Counter fibers_done;
    for (int i = 0; i < 32; ++i) {
      js.run(fibers_done, [&] {
        this_fiber::wait(gate);
        fibers_woken.fetch_add(1);
      });
    }
    std::atomic<int> threads_woken{0};
    std::thread thread([&] {
      js.wait(gate);
      threads_woken.fetch_add(1);
    });
    std::this_thread::sleep_for(5ms);
    gate.signal();  // from a plain thread: fibers go to the injector in bulk
    js.wait(fibers_done);
    thread.join();
    CHECK(fibers_woken.load() == 32);
    CHECK(threads_woken.load() == 1);
  }
}

// A counter whose last signal woke its waiters may be destroyed at once unless it keeps an
// exception: a waiter woken by that signal reads the counter again only to rethrow one. The
// gates are heap-allocated so that AddressSanitizer (the asan preset) reports any read of a
// destroyed one; the rounds give the woken waiter many chances to run before the delete.
namespace {

/// How the waiter of a gate waits.
enum class GateWait { CoAwait, Fiber, Thread, FiberTimed, CoAwaitTimed, ThreadTimed };
/// Who signals the gate and destroys it: a plain thread, or a job (on one worker the woken
/// waiter then runs only after the job destroyed the gate).
enum class GateOwner { Thread, Job };

constexpr int kGateRounds = 200;

/// Starts one waiter of `kind` on `gate`; it raises `woke` once its wait returned, and
/// `threw` if it threw. A plain-thread waiter is returned in `thread`.
void start_gate_waiter(JobSystem& js, Counter& done, Counter& gate, GateWait kind,
                       std::atomic<int>& woke, std::atomic<int>& threw, std::thread& thread) {
  auto finish = [&woke, &threw](auto&& wait) {
    try {
      wait();
    } catch (...) {
      threw.fetch_add(1);
    }
    woke.fetch_add(1);
  };
  switch (kind) {
    case GateWait::CoAwait:
      js.run(done, [&gate, &woke, &threw](Context& ctx) -> Task<> {
        try {
          co_await ctx.wait(gate);
        } catch (...) {
          threw.fetch_add(1);
        }
        woke.fetch_add(1);
      });
      break;
    case GateWait::CoAwaitTimed:
      js.run(done, [&gate, &woke, &threw](Context& ctx) -> Task<> {
        try {
          if (!co_await ctx.wait_for(gate, std::chrono::hours(1))) threw.fetch_add(100);
        } catch (...) {
          threw.fetch_add(1);
        }
        woke.fetch_add(1);
      });
      break;
    case GateWait::Fiber:
      js.run(done, [&gate, finish] { finish([&gate] { this_fiber::wait(gate); }); });
      break;
    case GateWait::FiberTimed:
      js.run(done, [&gate, &threw, finish] {
        finish([&gate, &threw] {
          if (!this_fiber::wait_for(gate, std::chrono::hours(1))) threw.fetch_add(100);
        });
      });
      break;
    case GateWait::Thread:
      thread = std::thread([&js, &gate, finish] { finish([&js, &gate] { js.wait(gate); }); });
      break;
    case GateWait::ThreadTimed:
      thread = std::thread([&gate, &threw, finish] {
        finish([&gate, &threw] {
          if (!this_fiber::wait_for(gate, std::chrono::hours(1))) threw.fetch_add(100);
        });
      });
      break;
  }
}

/// Until the waiter's node is linked and its linker is done with the gate (only the gate's
/// own unit keeps it above zero, so nothing can drain it meanwhile). On a fiber it yields so
/// that a waiter on the same worker can get there.
void until_linked(const Counter& gate) {
  while (!detail::CounterWaitList::has_linked_waiter(gate)) {
    if (this_fiber::on_fiber()) {
      this_fiber::yield();
    } else {
      std::this_thread::yield();
    }
  }
}

/// kGateRounds rounds: a fresh heap gate with one unit, one waiter linked on it, then its last
/// signal and at once its destruction. Every waiter must wake, none may throw.
void destroy_gates_after_last_signal(int workers, GateWait kind, GateOwner owner) {
  test::Watchdog watchdog("gates destroyed right after their last signal",
                          std::chrono::seconds(240));
  JobSystem js{test::config_with(workers)};
  Counter done;
  std::atomic<int> woke{0};
  std::atomic<int> threw{0};
  for (int round = 0; round < kGateRounds; ++round) {
    auto gate = std::make_unique<Counter>();
    gate->add(1);
    std::thread thread;
    start_gate_waiter(js, done, *gate, kind, woke, threw, thread);
    auto open_and_destroy = [&gate] {
      until_linked(*gate);
      gate->signal();
      gate.reset();  // right after the last signal: the woken waiter must not read it
    };
    if (owner == GateOwner::Job) {
      Counter owner_done;
      js.run(owner_done, open_and_destroy);
      js.wait(owner_done);
    } else {
      open_and_destroy();
    }
    if (thread.joinable()) thread.join();
  }
  js.wait(done);
  CHECK(woke.load() == kGateRounds);
  CHECK(threw.load() == 0);
}

}  // namespace

TEST_SUITE("counter lifetime after the last signal") {
  TEST_CASE("a gate destroyed right after its last signal is not read by its woken waiter") {
    for (const int workers : {1, 2}) {
      for (const GateOwner owner : {GateOwner::Thread, GateOwner::Job}) {
        CAPTURE(workers);
        CAPTURE(static_cast<int>(owner));
        SUBCASE("co_await ctx.wait") {
          destroy_gates_after_last_signal(workers, GateWait::CoAwait, owner);
        }
        SUBCASE("this_fiber::wait") {
          destroy_gates_after_last_signal(workers, GateWait::Fiber, owner);
        }
        SUBCASE("JobSystem::wait on a plain thread") {
          destroy_gates_after_last_signal(workers, GateWait::Thread, owner);
        }
        SUBCASE("this_fiber::wait_for in a job") {
          destroy_gates_after_last_signal(workers, GateWait::FiberTimed, owner);
        }
        SUBCASE("co_await ctx.wait_for") {
          destroy_gates_after_last_signal(workers, GateWait::CoAwaitTimed, owner);
        }
        SUBCASE("this_fiber::wait_for on a plain thread") {
          destroy_gates_after_last_signal(workers, GateWait::ThreadTimed, owner);
        }
      }
    }
  }

  TEST_CASE("an exception the gate keeps still reaches the waiter its last signal woke") {
    for (const int workers : {1, 2}) {
      for (const GateWait kind :
           {GateWait::CoAwait, GateWait::Fiber, GateWait::Thread, GateWait::FiberTimed,
            GateWait::CoAwaitTimed, GateWait::ThreadTimed}) {
        CAPTURE(workers);
        CAPTURE(static_cast<int>(kind));
        test::Watchdog watchdog("gates destroyed right after their last signal",
                                std::chrono::seconds(240));
        JobSystem js{test::config_with(workers)};
        Counter done;
        std::atomic<int> woke{0};
        std::atomic<int> threw{0};
        for (int round = 0; round < 20; ++round) {
          auto gate = std::make_unique<Counter>();
          Counter release;
          release.add(1);
          // The gate's one unit: a job that throws once released; its end is the last signal.
          js.run(*gate, [&release] {
            this_fiber::wait(release);
            throw std::runtime_error("kept by the gate");
          });
          std::thread thread;
          start_gate_waiter(js, done, *gate, kind, woke, threw, thread);
          until_linked(*gate);
          release.signal();
          // The waiter rethrows the kept exception: the gate lives until its wait returned.
          while (woke.load() != round + 1) std::this_thread::yield();
          if (thread.joinable()) thread.join();
        }
        js.wait(done);
        CHECK(woke.load() == 20);
        CHECK(threw.load() == 20);
      }
    }
  }
}
