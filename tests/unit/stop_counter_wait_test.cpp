// The lock-free stoppable counter wait: a stopped wait leaves its stop block's node on the
// counter's list as a tombstone, which the counter's drain skips and gives back. Its blocks come
// back once the counter drains (also through the destructor's join of pending units, and in a
// plain thread's drain of a counter that outlived its job system), and stops race a wake
// chain's combined links and the final signal without losing or doubling a wake.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <stop_token>
#include <thread>
#include <vector>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

/// How the waits of one group ended.
struct Ends {
  std::atomic<int> waiting{0};    // about to wait
  std::atomic<int> completed{0};  // the counter's zero ended the wait
  std::atomic<int> cancelled{0};  // the stop ended it
};

/// Records how `wait()` ended in `ends`.
template <class Wait>
void record_end(Ends& ends, Wait&& wait) {
  try {
    wait();
    ends.completed.fetch_add(1);
  } catch (const Error& error) {
    if (error.code() == ErrorCode::Cancelled) ends.cancelled.fetch_add(1);
  }
}

/// Spawns `count` waiters on `gate` into `done` with `token`, alternating coroutine jobs
/// (co_await ctx.wait) and plain jobs (this_fiber::wait).
void spawn_waiters(JobSystem& js, Counter& done, Counter& gate, Ends& ends, int count,
                   const std::stop_token& token) {
  for (int i = 0; i < count; ++i) {
    if (i % 2 == 0) {
      js.run(
          done,
          [e = &ends, g = &gate](Context& ctx) -> Task<> {
            e->waiting.fetch_add(1);
            try {
              co_await ctx.wait(*g);
              e->completed.fetch_add(1);
            } catch (const Error& error) {
              if (error.code() == ErrorCode::Cancelled) e->cancelled.fetch_add(1);
            }
          },
          token);
    } else {
      js.run(
          done,
          [e = &ends, g = &gate] {
            e->waiting.fetch_add(1);
            record_end(*e, [g] { this_fiber::wait(*g); });
          },
          token);
    }
  }
}

/// Returns once each of `workers` workers is between jobs: runs one job per worker that spins
/// until all of them run. Every job that began before has by then suspended (its wait linked)
/// or ended.
void settle_workers(JobSystem& js, std::uint32_t workers) {
  std::atomic<std::uint32_t> arrived{0};
  Counter settled;
  for (std::uint32_t i = 0; i < workers; ++i) {
    js.run(settled, [&arrived, workers] {
      arrived.fetch_add(1);
      while (arrived.load() < workers) std::this_thread::yield();
    });
  }
  js.wait(settled);
}

}  // namespace

TEST_SUITE("stoppable counter waits") {
  TEST_CASE("stopped waits on a counter that drains later give their stop blocks back") {
    // Every round, 64 waiters are stopped while the gate still has its unit: their blocks stay
    // on the gate's list until its signal drains it, which must give them back.
    test::Watchdog watchdog("stopped waits give blocks back", 240s);
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      constexpr int kWaiters = 64;
      constexpr int kRounds = 60;
      std::size_t made_after_warm_up = 0;
      for (int round = 0; round < kRounds; ++round) {
        if (round == 10) made_after_warm_up = detail::stop_blocks_made();
        std::stop_source source;
        Ends ends;
        Counter gate;
        gate.add(1);
        Counter done;
        spawn_waiters(js, done, gate, ends, kWaiters, source.get_token());
        while (ends.waiting.load() < kWaiters) std::this_thread::yield();
        source.request_stop();
        js.wait(done);
        CHECK(ends.cancelled.load() == kWaiters);
        CHECK(!gate.done());
        gate.signal();  // drains the tombstones
      }
      // The pool may still grow by a chunk or two while blocks drift among the threads'
      // caches (its bound: stop_wake.cpp); blocks that never came back would grow it by 64 a
      // round, 3,200 over the 50 measured rounds.
      CHECK(made_after_warm_up != 0);
      CHECK(detail::stop_blocks_made() <= made_after_warm_up + 2 * kWaiters);
    }
  }

  TEST_CASE("a counter with stopped waits and a pending job is destroyed once the job ends") {
    // The stopped waits return while the gate's job is still pending; the gate's destructor
    // joins that job (join_pending), whose signal drains the tombstones.
    test::Watchdog watchdog("destroyed after stopped waits", 120s);
    for (std::uint32_t workers : {1u, 2u, 4u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      for (int round = 0; round < 50; ++round) {
        Counter helper;  // outlives the gate: its job lets the gate's job end during ~Counter
        Event release;
        Ends ends;
        {
          Counter gate;
          js.run(gate, [&] { this_fiber::wait(release); });
          std::stop_source source;
          {
            Counter done;
            spawn_waiters(js, done, gate, ends, 8, source.get_token());
            while (ends.waiting.load() < 8) std::this_thread::yield();
            source.request_stop();
            js.wait(done);
          }
          CHECK(ends.cancelled.load() == 8);
          CHECK(gate.pending() == 1);
          js.run(helper, [&] { release.set(); });
        }  // ~Counter: waits for the gate's job
        js.wait(helper);
      }
    }
  }

  TEST_CASE("a counter outliving its job system is drained of stopped waits by a plain thread") {
    // The documented order: the stops end every wait before ~JobSystem, and the unit added by
    // hand is signalled before the counter goes (here after the system is gone, by main). The
    // drain must not touch the destroyed system through the tombstones' nodes (ASan: a
    // heap-use-after-free in Scheduler::inject when the head's job system was read).
    test::Watchdog watchdog("counter outliving its job system", 120s);
    for (std::uint32_t workers : {1u, 2u}) {
      for (int waiters : {1, 2, 9}) {
        CAPTURE(workers);
        CAPTURE(waiters);
        Counter gate;
        gate.add(1);
        Ends ends;
        {
          JobSystem js{test::config_with(workers)};
          std::stop_source source;
          Counter done;
          spawn_waiters(js, done, gate, ends, waiters, source.get_token());
          while (ends.waiting.load() < waiters) std::this_thread::yield();
          std::this_thread::sleep_for(10ms);  // most waits suspend: the stops leave tombstones
          source.request_stop();
          js.wait(done);
        }
        CHECK(ends.cancelled.load() == waiters);
        CHECK(!gate.done());
        gate.signal();  // on main, no job system left: only tombstones on the list
        CHECK(gate.done());
      }
    }
  }

  TEST_CASE("a counter outliving its job system gives stopped waits' blocks back on its drain") {
    // Every round a new job system: its waiters on the gate are stopped once their waits are
    // linked, so each leaves its stop block on the gate's list; then the system goes, and main
    // signals the gate to zero. The blocks belong to the process's pool, not to the job
    // system: that drain must give them back, or the pool grows by kWaiters blocks a round.
    test::Watchdog watchdog("outliving counter gives blocks back", 240s);
    constexpr int kWaiters = 16;
    constexpr int kRounds = 40;
    constexpr int kWarmUp = 8;
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      std::size_t made_after_warm_up = 0;
      for (int round = 0; round < kRounds; ++round) {
        if (round == kWarmUp) made_after_warm_up = detail::stop_blocks_made();
        Counter gate;
        gate.add(1);
        Ends ends;
        {
          JobSystem js{test::config_with(workers)};
          std::stop_source source;
          Counter done;
          spawn_waiters(js, done, gate, ends, kWaiters, source.get_token());
          while (ends.waiting.load() < kWaiters) std::this_thread::yield();
          settle_workers(js, workers);  // every wait is linked: each stop leaves a tombstone
          source.request_stop();
          js.wait(done);
        }
        CHECK(ends.cancelled.load() == kWaiters);
        CHECK(!gate.done());
        gate.signal();  // on main, no job system left: the drain meets only tombstones
        CHECK(gate.done());
      }
      // As in the first test: a chunk or two while blocks drift among the threads' caches;
      // blocks that never came back would grow the pool by 16 a round, 512 over the 32
      // measured rounds.
      CHECK(made_after_warm_up != 0);
      CHECK(detail::stop_blocks_made() <= made_after_warm_up + 2 * 64);
    }
  }

  TEST_CASE("stops racing a wake chain's combined waits on a second gate and its signal") {
    // 64 coroutines wait on `first`; its signal wakes them as a chain, whose chunks resume them
    // inline, so their waits on `second` are held and linked per chunk (combined links) — as
    // the stops of half of them race those links and the final signal of `second`. Each wait
    // ends exactly once; only the stopped ones may be cancelled.
    test::Watchdog watchdog("stops race combined links", 300s);
    JobSystem js{test::config_with(2)};
    constexpr int kWaiters = 64;
    int stop_won = 0;
    for (int round = 0; round < 150; ++round) {
      CAPTURE(round);
      std::array<std::stop_source, kWaiters / 2> sources;
      std::stop_source kept;  // never stopped
      Counter first;
      first.add(1);
      Counter second;
      second.add(1);
      Ends stopped;
      Ends unstopped;
      std::atomic<int> settled{0};  // at `second`, or ended before it
      Counter done;
      for (int i = 0; i < kWaiters; ++i) {
        const bool stop = i % 2 == 0;
        Ends& ends = stop ? stopped : unstopped;
        std::stop_token token =
            stop ? sources[static_cast<std::size_t>(i / 2)].get_token() : kept.get_token();
        js.run(
            done,
            [&, e = &ends](Context& ctx) -> Task<> {
              e->waiting.fetch_add(1);
              try {
                co_await ctx.wait(first);
                settled.fetch_add(1);
                co_await ctx.wait(second);
                e->completed.fetch_add(1);
              } catch (const Error& error) {
                if (error.code() == ErrorCode::Cancelled) e->cancelled.fetch_add(1);
              }
            },
            std::move(token));
      }
      while (stopped.waiting.load() + unstopped.waiting.load() < kWaiters) {
        std::this_thread::yield();
      }
      Counter helper;
      js.run(helper, [&] {
        first.signal();
        // `second` stays up until every waiter is at it (or was stopped before), so their
        // waits on it link first; round by round the stops land before, among or after them.
        while (settled.load() + stopped.cancelled.load() < kWaiters) this_fiber::yield();
        second.signal();
      });
      for (int i = 0; i < kWaiters / 2; i += 1 + round % 2) {
        sources[static_cast<std::size_t>(i)].request_stop();
      }
      for (std::stop_source& source : sources) source.request_stop();
      js.wait(helper);
      js.wait(done);
      CHECK(stopped.completed.load() + stopped.cancelled.load() == kWaiters / 2);
      CHECK(unstopped.completed.load() == kWaiters / 2);
      CHECK(unstopped.cancelled.load() == 0);
      stop_won += stopped.cancelled.load();
    }
    MESSAGE("the stop ended " << stop_won << " of " << 150 * kWaiters / 2 << " stopped waits");
  }
}
