// Long wait lists are handed to the workers as one chain, which they make runnable a chunk at a
// time (docs/architecture.md, "Waking a long wait list"). These tests attack that path: every
// kind of waiter in one list, waiters that block or suspend their worker in the middle of a
// chunk, and gates opened from plain threads and from jobs. A hang is turned into a failure by
// the watchdog.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

/// A coroutine job that waits on `gate` once and counts its wake-up.
Task<> count_after(Context& ctx, Counter& gate, std::atomic<int>& woken) {
  co_await ctx.wait(gate);
  woken.fetch_add(1, std::memory_order_relaxed);
}

/// Waits (yielding) until `count` coroutine jobs of `js` have started: most have linked on
/// their gate by then. Not needed for correctness (a late waiter sees the gate open), only so
/// that the list is long when the gate opens.
void wait_until_started(JobSystem& js, std::uint64_t count) {
  while (js.stats().coroutine_jobs_alive < count) std::this_thread::yield();
}

/// One round of the chunk tests: a closed `gate` (count 1) and the `jobs` its waiters run on.
struct ChunkRound {
  explicit ChunkRound(JobSystem& system) : js(system) { gate.add(1); }

  /// Queues `waiters` jobs `make_waiter(i)` on `jobs` (i: 0 to waiters - 1; each is a coroutine
  /// job whose first step is `co_await ctx.wait(gate)`), waits until they have started, and
  /// opens the gate.
  template <typename MakeWaiter>
  void queue_and_open(int waiters, MakeWaiter make_waiter) {
    for (int i = 0; i < waiters; ++i) js.run(jobs, make_waiter(i));
    wait_until_started(js, static_cast<std::uint64_t>(waiters));
    gate.signal();
  }

  JobSystem& js;
  Counter gate;
  Counter jobs;
};

/// The loop of the chunk tests: on 1 and 2 workers, 20 rounds of `round(r)`, each with a fresh
/// ChunkRound `r`.
template <typename Round>
void chunk_rounds(Round round) {
  for (std::uint32_t workers : {1u, 2u}) {
    CAPTURE(workers);
    JobSystem js{test::config_with(workers)};
    for (int i = 0; i < 20; ++i) {
      ChunkRound r(js);
      round(r);
    }
  }
}

/// Queues `waiters` coroutine jobs that each wait on one gate and then call `after_wake(i)`
/// (i: the job's index, 0 to waiters - 1); once they have started, calls `before_open()`,
/// opens the gate, and checks that every job woke and finished.
template <typename AfterWake, typename BeforeOpen>
void wake_coroutines(JobSystem& js, int waiters, AfterWake after_wake, BeforeOpen before_open) {
  Counter gate;
  gate.add(1);
  std::atomic<int> woken{0};
  Counter jobs;
  for (int i = 0; i < waiters; ++i) {
    js.run(jobs, [&, i](Context& ctx) -> Task<> {
      co_await ctx.wait(gate);
      after_wake(i);
      woken.fetch_add(1, std::memory_order_relaxed);
    });
  }
  wait_until_started(js, static_cast<std::uint64_t>(waiters));
  before_open();
  gate.signal();
  js.wait(jobs);
  CHECK(woken.load() == waiters);
}

}  // namespace

TEST_SUITE("wake_chain") {
  TEST_CASE("coroutines, fibers and threads on one gate all wake exactly once") {
    test::Watchdog watchdog("mixed waiters on one gate", 300s);
    for (std::uint32_t workers : {1u, 2u, 4u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      for (bool open_from_job : {false, true}) {
        CAPTURE(open_from_job);
        for (int round = 0; round < 20; ++round) {
          Counter gate;
          gate.add(1);
          std::atomic<int> coroutines{0};
          std::atomic<int> fibers{0};
          std::atomic<int> threads{0};
          Counter jobs;
          constexpr int kCoroutines = 300;  // several chunks
          constexpr int kFibers = 30;       // one per 8 coroutines, from the first on
          constexpr int kThreads = 3;
          for (int i = 0; i < kCoroutines; ++i) {
            js.run(jobs, [&](Context& ctx) { return count_after(ctx, gate, coroutines); });
            if (i % 8 == 0 && i / 8 < kFibers) {
              js.run(jobs, [&] {
                this_fiber::wait(gate);
                fibers.fetch_add(1, std::memory_order_relaxed);
              });
            }
          }
          std::vector<std::thread> waiting;
          for (int t = 0; t < kThreads; ++t) {
            waiting.emplace_back([&] {
              js.wait(gate);
              threads.fetch_add(1, std::memory_order_relaxed);
            });
          }
          wait_until_started(js, kCoroutines);
          if (open_from_job) {
            Counter opener;
            js.run(opener, [&gate] { gate.signal(); });
            js.wait(opener);
          } else {
            gate.signal();
          }
          js.wait(jobs);
          for (auto& thread : waiting) thread.join();
          CHECK(coroutines.load() == kCoroutines);
          CHECK(fibers.load() == kFibers);
          CHECK(threads.load() == kThreads);
        }
      }
    }
  }

  TEST_CASE("a waiter that blocks its worker until a later waiter of the same wake ran") {
    // The blocker spins (a worker thread blocked, as by an OS wait) until the setter, which
    // sits behind it in the same wait list, has run. A second worker must be able to take the
    // setter from the blocker's chunk.
    test::Watchdog watchdog("blocked worker mid-chunk", 300s);
    JobSystem js{test::config_with(2)};
    // 2 and 32 waiters: one chunk, held in one worker's slot while the other worker is parked;
    // 64: two chunks.
    for (const int waiters : {2, 32, 64}) {
      for (bool blocker_first : {true, false}) {
        for (int round = 0; round < 30; ++round) {
          CAPTURE(waiters);
          CAPTURE(blocker_first);
          CAPTURE(round);
          std::atomic<bool> flag{false};
          const int blocker = blocker_first ? waiters / 2 - 1 : waiters / 2;
          const int setter = blocker_first ? waiters / 2 : waiters / 2 - 1;
          wake_coroutines(
              js, waiters,
              [&](int i) {
                if (i == blocker) {
                  while (!flag.load(std::memory_order_acquire)) std::this_thread::yield();
                }
                if (i == setter) flag.store(true, std::memory_order_release);
              },
              // Long enough for the idle worker to end its spin phase and park: a parked
              // worker must be woken to take the chunk.
              [] { std::this_thread::sleep_for(5ms); });
        }
      }
    }
  }

  TEST_CASE("a waiter that suspends its fiber mid-chunk leaves the rest of the chunk runnable") {
    // The first waiters to run wait (stackfully, this_fiber::wait) on `relay`, which only the
    // others, further down the same wait list, complete.
    test::Watchdog watchdog("suspended fiber mid-chunk", 300s);
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      for (int round = 0; round < 50; ++round) {
        Counter relay;
        constexpr int kWaiters = 100;
        constexpr int kRelays = 50;
        relay.add(kRelays);
        std::atomic<int> arrived{0};
        wake_coroutines(
            js, kWaiters,
            [&](int) {
              // Whichever run first wait for the relays; the others are the relays.
              if (arrived.fetch_add(1) < kWaiters - kRelays) {
                this_fiber::wait(relay);
              } else {
                relay.signal();
              }
            },
            [] {});
      }
    }
  }

  TEST_CASE("a gate reopened every round keeps every agent stepping (the game-frame pattern)") {
    test::Watchdog watchdog("frame gates", 300s);
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      constexpr int kAgents = 2000;
      constexpr int kRounds = 30;
      Counter gates[2];
      Counter done;
      std::vector<int> steps(kAgents, 0);
      Counter agents;
      gates[0].add(1);
      for (int a = 0; a < kAgents; ++a) {
        js.run(agents, [&, a](Context& ctx) -> Task<> {
          for (int r = 0; r < kRounds; ++r) {
            co_await ctx.wait(gates[r % 2]);
            ++steps[static_cast<std::size_t>(a)];
            done.signal();
          }
        });
      }
      for (int r = 0; r < kRounds; ++r) {
        done.add(kAgents);
        if (r + 1 < kRounds) gates[(r + 1) % 2].add(1);
        gates[r % 2].signal();
        js.wait(done);
      }
      js.wait(agents);
      for (int a = 0; a < kAgents; ++a) REQUIRE(steps[static_cast<std::size_t>(a)] == kRounds);
    }
  }
  TEST_CASE("signals made by the waiters of a chunk all reach their counters") {
    // Waiters of one wake signal three counters in turn, some yield or suspend their fiber in
    // between, and a plain thread waits on each counter: every signal must arrive, whether the
    // worker applies it at once or at the end of the chunk.
    test::Watchdog watchdog("signals from a chunk", 300s);
    chunk_rounds([](ChunkRound& r) {
      Counter done[3];
      Counter side;  // completed by a plain job; some waiters suspend their fiber on it
      constexpr int kWaiters = 200;
      for (Counter& c : done) c.add(kWaiters / 3 + 1);
      side.add(1);
      std::atomic<int> signalled{0};
      r.queue_and_open(kWaiters, [&](int i) {
        return [&, i](Context& ctx) -> Task<> {
          co_await ctx.wait(r.gate);
          done[i % 3].signal();
          signalled.fetch_add(1, std::memory_order_relaxed);
          if (i % 7 == 0) co_await ctx.yield();
          if (i % 11 == 0) this_fiber::wait(side);
        };
      });
      r.js.run(r.jobs, [&] { side.signal(); });
      for (int k = 0; k < 3; ++k) {
        // The rest of each count: kWaiters / 3 + 1 minus the waiters that signal it.
        const int own = kWaiters / 3 + 1 - (kWaiters - k + 2) / 3;
        for (int u = 0; u < own; ++u) done[k].signal();
        r.js.wait(done[k]);  // parks this thread until every waiter's signal arrived
      }
      r.js.wait(r.jobs);
      CHECK(signalled.load() == kWaiters);
    });
  }

  TEST_CASE("waits made by the waiters of a chunk are all linked and woken") {
    // Waiters of one wake wait again, on two counters in turn; the last waiter of each round
    // completes the first of them from inside the chunk (its waits are still held by the
    // worker then), and a plain job completes the second. Every waiter must come back from
    // both waits exactly once, however its wait was linked.
    test::Watchdog watchdog("waits from a chunk", 300s);
    chunk_rounds([](ChunkRound& r) {
      Counter next_gate;  // completed by the last waiter to pass `gate`
      Counter last_gate;  // completed by a plain job once every waiter passed next_gate's wait
      next_gate.add(1);
      last_gate.add(1);
      constexpr int kWaiters = 200;
      std::atomic<int> passed_gate{0};
      std::atomic<int> passed_next{0};
      std::atomic<int> passed_last{0};
      r.queue_and_open(kWaiters, [&](int i) {
        return [&, i](Context& ctx) -> Task<> {
          co_await ctx.wait(r.gate);
          if (passed_gate.fetch_add(1) + 1 == kWaiters) next_gate.signal();
          if (i % 13 == 0) co_await ctx.yield();
          co_await ctx.wait(next_gate);
          passed_next.fetch_add(1);
          co_await ctx.wait(last_gate);
          passed_last.fetch_add(1);
        };
      });
      r.js.wait(next_gate);
      while (passed_next.load() != kWaiters) std::this_thread::yield();
      CHECK(passed_last.load() == 0);  // nobody passed a gate that is still closed
      r.js.run(r.jobs, [&] { last_gate.signal(); });
      r.js.wait(r.jobs);
      CHECK(passed_gate.load() == kWaiters);
      CHECK(passed_last.load() == kWaiters);
    });
  }

  TEST_CASE("a waiter of a chunk that signals a counter sees its signal and may destroy it") {
    // Each waiter of one wake completes a counter of its own (on its frame, and on the heap)
    // and reads it or destroys it at once, while its worker may still hold that signal to
    // apply at the end of the chunk: the signaller must see its own signal, and the counter's
    // end must not find it pending (an abort) or apply it later (a use after free).
    test::Watchdog watchdog("own counters from a chunk", 300s);
    chunk_rounds([](ChunkRound& r) {
      constexpr int kWaiters = 200;
      std::atomic<int> saw_done{0};
      r.queue_and_open(kWaiters, [&](int) {
        return [&](Context& ctx) -> Task<> {
          co_await ctx.wait(r.gate);
          {
            Counter local;
            local.add(2);
            local.signal();
            local.signal();
            if (local.done() && local.pending() == 0) saw_done.fetch_add(1);
          }  // destroyed right after its last signal
          auto* heap = new Counter;
          heap->add(1);
          heap->signal();
          delete heap;  // at once: under ASan a late apply is a use after free
        };
      });
      r.js.wait(r.jobs);
      CHECK(saw_done.load() == kWaiters);
    });
  }
}
