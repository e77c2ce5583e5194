// Steady-state spawn + wait + yield perform zero global-allocator calls. This binary replaces
// the global operator new to count every call (support/count_allocations.cpp).

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <mutex>
#include <stop_token>
#include <thread>
#include <utility>
#include <vector>

#include "record_pool.hpp"

#include "support/config.hpp"
#include "support/count_allocations.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

/// On 1 and 2 workers, runs `root(ctx, during, iterations)` as one job (a fiber or a coroutine
/// job): it runs its rounds, counts the measured ones in `iterations` and stores in `during`
/// the global allocations made while they ran. Checks `expected_iterations` and zero. With a
/// `stop` that can be stopped, the root job gets it (its waits are then cancellation points).
template <typename Root>
void check_no_allocations(long expected_iterations, Root root, std::stop_token stop = {}) {
  for (std::uint32_t workers : {1u, 2u}) {
    CAPTURE(workers);
    JobSystem js{test::config_with(workers)};
    long during = -1;
    long iterations = 0;
    Counter done;
    js.run(
        done, [&](Context& ctx) { return root(ctx, during, iterations); }, stop);
    js.wait(done);
    CHECK(iterations == expected_iterations);
    CHECK(during == 0);
  }
}

/// The primitives' allocation check (see its test case), with the root job and its children
/// given `stop`.
void primitives_without_allocations(std::stop_token stop) {
  check_no_allocations(
      3000,
      [](Context& ctx, long& during, long& iterations) -> Task<> {
        for (int round = 0; round < 4000; ++round) {
          if (round == 1000) during = test::allocations_total();  // after the warm-up
          struct Round {  // one pointer in each child's capture: no boxed callable
            Event go_event;
            Event started{Event::Mode::Auto};
            Mutex mutex;
            ConditionVariable cv;
            Semaphore semaphore{1};
            bool go = false;
            int arrived = 0;
            Counter work;
          } r;
          r.work.add(4);
          Counter children;
          for (int i = 0; i < 4; ++i) {
            ctx.spawn(
                children,
                [p = &r] {
                  p->started.set();
                  this_fiber::wait(p->go_event);
                  {
                    std::unique_lock lock(p->mutex);
                    p->cv.wait(lock, [p] { return p->go; });
                    ++p->arrived;
                    p->cv.notify_all();
                  }
                  p->semaphore.acquire();
                  this_fiber::yield();
                  p->semaphore.release();
                  p->work.signal();
                },
                ctx.stop_token());
          }
          co_await r.started;
          r.go_event.set();
          {
            auto guard = co_await r.mutex.scoped_lock();
            r.go = true;
            r.cv.notify_all();
            while (r.arrived < 4) co_await r.cv.wait(guard);
          }
          co_await r.semaphore.acquire_async();
          co_await ctx.yield();
          r.semaphore.release();
          co_await ctx.wait(r.work, 2);
          co_await ctx.wait(children);
          if (round >= 1000) ++iterations;
        }
        during = test::allocations_total() - during;
      },
      std::move(stop));
}

}  // namespace

TEST_SUITE("allocation") {
  TEST_CASE("steady-state spawn, wait and yield call the global allocator zero times") {
    test::Watchdog watchdog("allocation count", 120s);
    check_no_allocations(10000, [](Context& ctx, long& during, long& iterations) {
      auto step = [&ctx] {
        Counter children;
        for (int i = 0; i < 8; ++i) {
          ctx.spawn(children, [](Context&) { this_fiber::yield(); });
        }
        this_fiber::wait(children);
        this_fiber::yield();
      };
      for (int i = 0; i < 2000; ++i) step();  // warm-up: caches, deques, injector blocks
      const long before = test::allocations_total();
      for (int i = 0; i < 10000; ++i, ++iterations) step();
      during = test::allocations_total() - before;
    });
  }

  TEST_CASE(
      "steady-state Event, Mutex, ConditionVariable, Semaphore and value waits call the "
      "global allocator zero times, also in jobs with a stop token") {
    // Every round, plain children (this_fiber waits) and the root coroutine job (co_await)
    // contend on each primitive; measured from inside the root after a warm-up. The root is one
    // long-lived coroutine, so no coroutine frame is made per round (frame pools have their own
    // test below). The second run gives the root and the children a token that can be stopped
    // (never stopped): their waits then register stop callbacks, in pooled blocks.
    test::Watchdog watchdog("primitives allocation count", 240s);
    std::stop_source source;
    for (const std::stop_token& stop : {std::stop_token{}, source.get_token()}) {
      CAPTURE(stop.stop_possible());
      primitives_without_allocations(stop);
    }
  }

  TEST_CASE("steady-state sleeps and timed waits call the global allocator zero times") {
    // The timer entries live in the fiber and the awaiters; the timer heap keeps its capacity.
    test::Watchdog watchdog("timer allocation count", 120s);
    check_no_allocations(200, [](Context& ctx, long& during, long& iterations) {
      Event never;
      Counter held;
      held.add(1);
      // Which workers ran a child: each makes its own coroutine frame pool on its first frame.
      std::atomic<unsigned> ran_child{0};
      auto step = [&] {
        Counter children;
        ctx.spawn(children, [&ran_child](Context& child) -> Task<> {
          if (child.worker_index() < 32) ran_child.fetch_or(1u << child.worker_index());
          co_await child.sleep_for(10us);
          Event none;
          (void)co_await child.wait_for(none, 10us);
        });
        this_fiber::sleep_for(10us);
        (void)this_fiber::wait_for(never, 10us);
        (void)this_fiber::wait_for(held, 10us);
        this_fiber::wait(children);
      };
      // Warm-up: at least 50 rounds, and until every worker has run a child (on a loaded
      // machine one worker may run every child for a while).
      const unsigned all_workers = (1u << ctx.system().worker_count()) - 1;
      for (int i = 0; i < 50 || ran_child.load() != all_workers; ++i) step();
      const long before = test::allocations_total();
      for (int i = 0; i < 200; ++i, ++iterations) step();
      during = test::allocations_total() - before;
      held.signal();
    });
  }

  TEST_CASE("co_await ctx.wait and ctx.yield on a fiber call the global allocator zero times") {
    // The coroutine frame of the job itself is allocated once, when the job starts; awaiting
    // inside it allocates nothing (the wait node lives in the fiber).
    test::Watchdog watchdog("coroutine allocation count", 120s);
    check_no_allocations(10000, [](Context& ctx, long& during, long& iterations) -> Task<> {
      for (int round = 0; round < 12000; ++round) {
        if (round == 2000) during = test::allocations_total();  // after the warm-up
        Counter children;
        for (int i = 0; i < 8; ++i) ctx.spawn(children, [] { this_fiber::yield(); });
        co_await ctx.wait(children);
        co_await ctx.yield();
        co_await children;  // already zero: no suspension
        if (round >= 2000) ++iterations;
      }
      during = test::allocations_total() - during;
    });
  }

  TEST_CASE(
      "coroutine child jobs and Task<T> children make their frames without the global "
      "allocator once warm") {
    // Every round spawns 8 coroutine jobs (a frame each), each awaiting a Task<int> child (a
    // frame each) and yielding: frames come from the per-thread recycling pools. The warm-up
    // runs one loop per worker at once, each holding its worker until all have started, so
    // that every worker has made frames (with work-first waits one root alone may run nearly
    // everything on its own worker). The measured loop counts from inside its root job, whose
    // own frame is made once per job like any other's.
    test::Watchdog watchdog("coroutine frame allocation count", 120s);
    struct Child {
      static Task<int> value(Context& ctx, int n) {
        co_await ctx.yield();
        co_return n + 1;
      }
    };
    struct Loop {
      static Task<> run(Context& ctx, int rounds, std::atomic<long>& sum, long* during) {
        const long before = test::allocations_total();
        for (int round = 0; round < rounds; ++round) {
          Counter children;
          for (int i = 0; i < 8; ++i) {
            ctx.spawn(children, [&sum, i](Context& c) -> Task<> {
              sum.fetch_add(co_await Child::value(c, i), std::memory_order_relaxed);
            });
          }
          co_await ctx.wait(children);
        }
        if (during != nullptr) *during = test::allocations_total() - before;
      }
    };
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::atomic<long> sum{0};
      std::atomic<std::uint32_t> started{0};
      Counter warm;
      for (std::uint32_t w = 0; w < workers; ++w) {
        js.run(warm, [&sum, &started, workers](Context& ctx) {
          started.fetch_add(1);
          while (started.load() < workers) std::this_thread::yield();  // one root per worker
          return Loop::run(ctx, 3000, sum, nullptr);
        });
      }
      js.wait(warm);
      long during = -1;
      Counter done;
      js.run(done, [&](Context& ctx) { return Loop::run(ctx, 10000, sum, &during); });
      js.wait(done);
      CHECK(sum.load() == (3000L * workers + 10000L) * 36);  // 1 + 2 + ... + 8 per round
      CHECK(during == 0);
    }
  }

  TEST_CASE("steady-state affine spawns, run_pending and resume_on hops never allocate") {
    test::Watchdog watchdog("affine allocation count", 120s);
    Config config = test::config_with(2);
    config.attachable_threads = 1;
    JobSystem js{config};
    AttachedWorker main_thread(js);
    const AttachedThread target = main_thread;
    std::atomic<long> ran{0};
    // Which workers pushed to the attached thread's inbox, per lane: a thread's first push to
    // a lock-free queue makes its producer there (moodycamel's implicit producers).
    std::atomic<unsigned> spawned_from{0};
    std::atomic<unsigned> hopped_from{0};
    auto mark = [](std::atomic<unsigned>& mask, std::size_t worker) {
      if (worker < 32) mask.fetch_or(1u << worker);
    };
    auto frame = [&] {
      Counter done;
      js.run(done, [&](Context& ctx) {
        mark(spawned_from, ctx.worker_index());
        for (int i = 0; i < 8; ++i) target.spawn(done, [&ran] { ran.fetch_add(1); });
      });
      js.run(done, [&](Context& ctx) -> Task<> {
        mark(hopped_from, ctx.worker_index());
        co_await ctx.resume_on(target);
        co_await ctx.resume_on_any();
      });
      while (!done.done()) {
        main_thread.run_pending();
        std::this_thread::yield();
      }
      js.wait(done);
    };
    // Warm-up: producer blocks, records, frames; at least 500 frames, and until every worker
    // thread has pushed to both lanes (on a loaded machine one worker may do it all for long).
    const unsigned all_workers = (1u << js.worker_count()) - 1;
    long warm_frames = 0;
    for (; warm_frames < 500 || (spawned_from.load() & all_workers) != all_workers ||
           (hopped_from.load() & all_workers) != all_workers;
         ++warm_frames) {
      frame();
    }
    const long before = test::allocations_total();
    for (int i = 0; i < 2000; ++i) frame();
    const long during = test::allocations_total() - before;
    CHECK(ran.load() == (warm_frames + 2000) * 8);
    CHECK(during == 0);
  }

  TEST_CASE("giving job records back never allocates, however fragmented the shared list") {
    // release_shared, spill and drain are noexcept: an allocation there (growing a list of
    // chains) could only end in std::terminate. Alternating a full chain (a drained cache)
    // and a single record makes every give-back start a chain of its own in the shared list:
    // about 18,000 chains, more than any bookkeeping reserved up front.
    constexpr std::size_t kRecords = 600'000;
    detail::RecordPool pool(1);
    detail::RecordCache cache;
    std::vector<detail::JobRecord*> records;
    records.reserve(kRecords);
    for (std::size_t i = 0; i < kRecords; ++i) records.push_back(pool.acquire(cache));
    const long before = test::allocations_total();
    std::size_t next = 0;
    while (next + detail::RecordPool::kBatch + 1 <= kRecords) {
      detail::RecordCache chain;
      for (std::size_t k = 0; k < detail::RecordPool::kBatch; ++k, ++next) {
        records[next]->free.next = chain.head;
        chain.head = records[next];
        ++chain.count;
      }
      pool.drain(chain);
      pool.release_shared(records[next++]);
    }
    CHECK(test::allocations_total() == before);
    // Every record given back can be taken again.
    detail::RecordCache again;
    std::size_t taken = 0;
    for (std::size_t i = 0; i < next; ++i) taken += pool.acquire(again) != nullptr ? 1 : 0;
    CHECK(taken == next);
  }

  TEST_CASE(
      "a thread's coroutine-frame pool outlives the thread: its frames come back to it from "
      "other threads, and the next thread to make a frame adopts it") {
    // Frames of an exited thread freed on another thread go to that pool's remote list; the
    // next new thread adopts the pool and makes its frames from it, without the global
    // allocator. Under ASan a pooled frame is poisoned but for its link, so a use of a stale
    // frame is reported.
    struct Make {
      static Task<int> value(int n) { co_return n; }  // lazy: the call only makes the frame
    };
    std::vector<Task<int>> kept;
    std::thread([&kept] {
      for (int i = 0; i < 8; ++i) {
        const Task<int> warm = Make::value(i);  // the pool's first frames, back to it at once
      }
      for (int i = 0; i < 4; ++i) kept.push_back(Make::value(i));
    }).join();
    kept.clear();  // freed on this thread: pushed onto the exited thread's pool
    long during = -1;
    std::thread([&during] {
      const long before = test::allocations_on_this_thread();
      for (int i = 0; i < 8; ++i) {
        const Task<int> t = Make::value(i);
      }
      during = test::allocations_on_this_thread() - before;
    }).join();
    CHECK(during == 0);
  }
}
