// JobSystem: submission forms, inline execution, misuse errors, pool exhaustion, shutdown.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <new>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "counter_wait_list.hpp"
#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

TEST_SUITE("job_system") {
  TEST_CASE("a job that does not suspend runs inline with no fiber switch") {
    JobSystem js{test::config_with(2)};
    std::atomic<int> ran{0};
    Counter done;
    for (int i = 0; i < 1000; ++i) js.run(done, [&ran] { ran.fetch_add(1); });
    js.wait(done);
    const Stats stats = js.stats();
    CHECK(ran.load() == 1000);
    CHECK(stats.jobs_run == 1000);
    CHECK(stats.fiber_switches == 0);
    CHECK(stats.fibers_in_use == 2);  // one per worker, none suspended
  }

  TEST_CASE("run and spawn take std::span{...} of a C array, a std::array and a vector") {
    // The form docs/api.md shows: `js.run(counter, std::span{jobs})`, whose extent is fixed
    // for arrays and dynamic for vectors, and whose element type may be const.
    JobSystem js{test::config_with(2)};
    std::atomic<int> ran{0};
    struct Bump {
      std::atomic<int>* ran;
      void operator()() const { ran->fetch_add(1); }
    };
    Bump c_array[3] = {{&ran}, {&ran}, {&ran}};
    std::array<Bump, 4> std_array{Bump{&ran}, Bump{&ran}, Bump{&ran}, Bump{&ran}};
    const std::array<Bump, 2> const_array{Bump{&ran}, Bump{&ran}};
    std::vector<Bump> vector(5, Bump{&ran});
    Counter done;
    js.run(done, std::span{c_array});
    js.run(done, std::span{std_array}, Priority::High);
    js.run(done, std::span{const_array});
    js.run(done, std::span{vector});
    js.run(done, [&](Context& ctx) {
      Counter children;
      ctx.spawn(children, std::span{c_array});
      ctx.spawn(children, std::span{const_array}, Priority::Low);
      this_fiber::wait(children);
    });
    js.wait(done);
    CHECK(ran.load() == 3 + 4 + 2 + 5 + 3 + 2);
  }

  TEST_CASE("a span of jobs is submitted in bulk, from a thread and from a job") {
    JobSystem js{test::config_with(2)};
    std::array<std::atomic<int>, 300> hits{};
    struct Hit {
      std::array<std::atomic<int>, 300>* hits;
      int index;
      void operator()(Context&) const { (*hits)[index].fetch_add(1); }
    };
    std::vector<Hit> jobs;
    for (int i = 0; i < 150; ++i) jobs.push_back(Hit{&hits, i});
    Counter done;
    js.run(done, std::span<Hit>(jobs));
    js.run(done, [&hits](Context& ctx) {
      std::vector<Hit> more;
      for (int i = 150; i < 300; ++i) more.push_back(Hit{&hits, i});
      Counter children;
      ctx.spawn(children, std::span<Hit>(more));
      this_fiber::wait(children);
    });
    js.wait(done);
    int wrong = 0;
    for (auto& h : hits) wrong += h.load() != 1;
    CHECK(wrong == 0);
  }

  TEST_CASE("plain threads keep a cache of job records that outlives or dies with its system") {
    // A plain thread takes records from its own cache (one lock per chain of spawns). The cache
    // goes back to a system that still lives when the thread exits or switches systems, and is
    // dropped for one that died: under ASan a use of the dead system's records would fail.
    test::Watchdog watchdog("foreign record caches", 60s);
    auto submit = [](JobSystem& js, int jobs) {
      std::atomic<int> ran{0};
      Counter done;
      for (int i = 0; i < jobs; ++i) js.run(done, [&ran] { ran.fetch_add(1); });
      js.wait(done);
      return ran.load();
    };
    JobSystem outliving{test::config_with(2)};
    std::thread worker_of_two([&] {
      {
        JobSystem short_lived{test::config_with(1)};
        CHECK(submit(short_lived, 1'000) == 1'000);
      }                                          // dies while this thread still caches its records
      CHECK(submit(outliving, 1'000) == 1'000);  // drops the dead cache, takes from `outliving`
    });
    worker_of_two.join();  // exits: gives its cache back to `outliving`
    for (int round = 0; round < 3; ++round) {
      std::thread([&] { CHECK(submit(outliving, 500) == 500); }).join();
    }
    CHECK(submit(outliving, 10'000) == 10'000);
  }

  TEST_CASE("large callables are boxed and still run exactly once") {
    JobSystem js{test::config_with(2)};
    std::array<char, 200> payload{};
    payload[199] = 'x';
    char seen = 0;
    Counter done;
    js.run(done, [payload, &seen] { seen = payload[199]; });
    js.wait(done);
    CHECK(seen == 'x');
  }

  TEST_CASE("fiber-only calls on a plain thread throw NotOnFiber naming the alternative") {
    Counter counter;
    counter.add(1);
    try {
      this_fiber::wait(counter);
      FAIL("this_fiber::wait did not throw");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::NotOnFiber);
      CHECK(std::string(e.what()).find("JobSystem::wait") != std::string::npos);
    }
    CHECK_THROWS_AS(this_fiber::yield(), Error);
    CHECK_FALSE(this_fiber::on_fiber());
    counter.signal();
  }

  TEST_CASE("JobSystem::wait and run from inside a job suspend the fiber, not the worker") {
    test::Watchdog watchdog("wait from job", 60s);
    JobSystem js{test::config_with(1)};
    bool on_fiber = false;
    int value = 0;
    Counter done;
    js.run(done, [&](Context& ctx) {
      on_fiber = this_fiber::on_fiber();
      Counter inner;
      ctx.system().run(inner, [&value] { value = 5; });  // onto this worker's deque
      ctx.system().wait(inner);                          // one worker: blocking it would deadlock
    });
    js.wait(done);
    CHECK(on_fiber);
    CHECK(value == 5);
  }

  TEST_CASE("with every warm fiber in use, a wait takes a grown one and nothing is lost") {
    test::Watchdog watchdog("pool exhaustion", 60s);
    JobSystem js{test::config_with(1, 2)};  // one fiber for the worker, one to suspend into
    Counter gate;
    gate.add(1);
    Counter jobs_done;
    int finished = 0;  // one worker: the jobs never overlap
    js.run(jobs_done, [&] {
      this_fiber::wait(gate);  // takes the spare fiber
      ++finished;
    });
    while (js.stats().fibers_in_use < 2) std::this_thread::yield();
    js.run(jobs_done, [&] {
      this_fiber::wait(gate);  // no warm fiber left: the pool gives a cold one
      ++finished;
    });
    while (js.stats().pool_exhausted == 0) std::this_thread::yield();
    gate.signal();
    js.wait(jobs_done);
    CHECK(finished == 2);
    CHECK(js.stats().pool_exhausted >= 1);
  }

  TEST_CASE("far more suspended jobs than warm fibers still all complete, none lost") {
    test::Watchdog watchdog("tiny pool", 120s);
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers, workers + 2)};
      Counter gate;
      gate.add(1);
      std::atomic<int> finished{0};
      Counter done;
      js.run(done, [&](Context& ctx) {
        Counter children;
        for (int i = 0; i < 32; ++i) {
          ctx.spawn(children, [&] {
            this_fiber::wait(gate);  // every child must suspend: 32 > the 2 spare warm fibers
            finished.fetch_add(1);
          });
        }
        this_fiber::wait(children);
      });
      while (js.stats().pool_exhausted == 0) std::this_thread::yield();
      gate.signal();
      js.wait(done);
      CHECK(finished.load() == 32);
      CHECK(js.stats().fibers_in_use == workers);
    }
  }

  TEST_CASE("a wait runs the waiter's own children inline: fib needs no fiber switch") {
    JobSystem js{test::config_with(1)};
    struct Fib {
      static long run(Context& ctx, int n) {
        if (n < 2) return n;
        long a = 0;
        long b = 0;
        Counter children;
        ctx.spawn(children, [&a, n](Context& c) { a = run(c, n - 1); });
        ctx.spawn(children, [&b, n](Context& c) { b = run(c, n - 2); });
        this_fiber::wait(children);
        return a + b;
      }
    };
    long result = 0;
    Counter done;
    js.run(done, [&result](Context& ctx) { result = Fib::run(ctx, 18); });
    js.wait(done);
    CHECK(result == 2584);
    CHECK(js.stats().fiber_switches == 0);  // one worker: every child was its parent's to run
  }

  TEST_CASE("signals held back for a run of same-counter jobs are applied before other work") {
    // One worker runs 16 jobs of `batch` in a row (one injector batch), then a job of another
    // counter that spins until `batch` is done. The worker applies the batch's signals as one
    // update; if it kept them past the switch to the other job, that job would spin forever.
    JobSystem js{test::config_with(1)};
    Counter batch;
    Counter other;
    std::atomic<bool> gate{false};
    std::atomic<int> ran{0};
    std::atomic<bool> saw_done{false};
    // Hold the worker so everything below is queued before it looks.
    Counter hold;
    js.run(hold, [&gate] {
      while (!gate.load()) std::this_thread::yield();
    });
    for (int i = 0; i < 16; ++i) js.run(batch, [&ran] { ran.fetch_add(1); });
    js.run(other, [&batch, &saw_done] {
      const auto deadline = std::chrono::steady_clock::now() + 10s;
      while (!batch.done() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
      saw_done.store(batch.done());
    });
    const test::Watchdog watchdog("deferred signals", 60s);
    gate.store(true);
    js.wait(other);
    js.wait(batch);
    js.wait(hold);
    CHECK(ran.load() == 16);
    CHECK(saw_done.load());
  }

  TEST_CASE("a child run inline sees the ends of the siblings run before it") {
    // One worker: the parent's wait runs the second child, then the first, on its own stack.
    // The second's end signal may be held back while the first runs (a pending sibling keeps
    // the count above zero anyway), but the first reads the count: it must see one unit left.
    JobSystem js{test::config_with(1)};
    std::int64_t seen_pending = -1;
    bool seen_done = true;
    Counter done;
    js.run(done, [&](Context& ctx) {
      Counter children;
      ctx.spawn(children, [&] {
        seen_pending = children.pending();
        seen_done = children.done();
      });
      ctx.spawn(children, [] {});  // newest: run first
      this_fiber::wait(children);
    });
    js.wait(done);
    CHECK(seen_pending == 1);
    CHECK_FALSE(seen_done);
    CHECK(js.stats().fiber_switches == 0);  // both children ran on the parent's stack
  }

  TEST_CASE("a child run inline that suspends lets a value wait see its siblings' ends") {
    // The parent's wait runs `quick` (its end may be held back), then `slow`, which waits for
    // `go`. `go` is signalled by another job only once `children` is down to one unit: the
    // held end must be applied when `slow` suspends, or the three jobs wait for one another.
    test::Watchdog watchdog("held signal across a suspension", 60s);
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Counter children;
      Counter go;
      go.add(1);
      std::atomic<bool> slow_ran{false};
      Counter done;
      js.run(done, [&](Context& ctx) {
        ctx.spawn(children, [&] {
          this_fiber::wait(go);
          slow_ran.store(true);
        });
        ctx.spawn(children, [] {});  // newest: run first
        this_fiber::wait(children);
      });
      js.run(done, [&] {
        this_fiber::wait(children, 1);  // one unit left: `quick` ended
        go.signal();
      });
      js.wait(done);
      CHECK(slow_ran.load());
      CHECK(children.done());
    }
  }

  TEST_CASE("a child run inline that blocks its worker lets a linked value wait see its siblings") {
    // `watcher` waits for `c` to come down to one unit (its siblings ended), then lets the
    // blocking child go. The siblings run inline on the parent's stack just before it: their
    // ends must reach a value waiter linked on `c` even though the child never suspends.
    test::Watchdog watchdog("held ends and a linked value wait", 60s);
    JobSystem js{test::config_with(2)};
    Counter c;
    c.add(2);  // a gate: the watcher links while the count is above its target
    std::atomic<bool> released{false};
    Counter watcher;
    js.run(watcher, [&] {
      this_fiber::wait(c, 1);
      released.store(true);
    });
    while (!detail::CounterWaitList::has_linked_waiter(c)) std::this_thread::yield();
    Counter done;
    js.run(done, [&](Context& ctx) {
      ctx.spawn(c, [&] {
        while (!released.load()) std::this_thread::yield();  // blocks its worker
      });
      for (int i = 0; i < 3; ++i) ctx.spawn(c, [] {});  // run first, inline
      c.signal();
      c.signal();  // the gate is open: the count is the four children
      this_fiber::wait(c);
    });
    js.wait(done);
    js.wait(watcher);
    CHECK(released.load());
    CHECK(c.done());
  }

  TEST_CASE("waiting on the running job's own counter throws CounterMisuse") {
    JobSystem js{test::config_with(1)};
    bool threw = false;
    Counter done;
    js.run(done, [&done, &threw] {
      try {
        this_fiber::wait(done);
      } catch (const Error& e) {
        threw = e.code() == ErrorCode::CounterMisuse;
      }
    });
    js.wait(done);
    CHECK(threw);
  }

  TEST_CASE("a coroutine job awaiting its own counter throws CounterMisuse, also after resuming") {
    // The check must survive the coroutine's suspensions: it resumes on another fiber, which
    // learns the job's counter from the wait node (found by review: it was lost after the
    // first co_await).
    test::Watchdog watchdog("own counter after a suspension", 60s);
    JobSystem js{test::config_with(2)};
    std::atomic<int> threw{0};
    Counter done;
    js.run(done, [&](Context& ctx) -> Task<> {
      for (int round = 0; round < 3; ++round) {
        if (round == 1) co_await ctx.yield();
        if (round == 2) {
          Counter child;
          ctx.spawn(child, [] {});
          co_await ctx.wait(child);
        }
        try {
          co_await ctx.wait(done);
        } catch (const Error& e) {
          if (e.code() == ErrorCode::CounterMisuse) threw.fetch_add(1);
        }
      }
    });
    js.wait(done);
    CHECK(threw.load() == 3);
  }

  TEST_CASE("destruction finishes queued work and suspended jobs whose counters complete") {
    test::Watchdog watchdog("orderly shutdown", 60s);
    std::atomic<int> ran{0};
    std::atomic<bool> waiter_finished{false};
    Counter done;
    {
      JobSystem js{test::config_with(2)};
      for (int i = 0; i < 500; ++i) {
        js.run(done, [&ran] {
          std::this_thread::sleep_for(10us);
          ran.fetch_add(1);
        });
      }
      js.run(done, [&](Context& ctx) {
        Counter child;
        ctx.spawn(child, [] { std::this_thread::sleep_for(1ms); });
        this_fiber::wait(child);  // suspended when the destructor starts; completes later
        waiter_finished.store(true);
      });
    }  // ~JobSystem: no wait() was called
    CHECK(ran.load() == 500);
    CHECK(waiter_finished.load());
    CHECK(done.done());
  }

  TEST_CASE("destruction right after run never drops a queued job") {
    test::Watchdog watchdog("run then destroy", 120s);
    std::atomic<int> ran{0};
    int submitted = 0;
    for (int round = 0; round < 200; ++round) {
      Counter done;
      {
        JobSystem js{test::config_with(1 + round % 2)};
        for (int i = 0; i < 10; ++i, ++submitted) js.run(done, [&ran] { ran.fetch_add(1); });
      }
      REQUIRE(done.done());
    }
    CHECK(ran.load() == submitted);
  }

  TEST_CASE("destruction with a job suspended forever reports it and does not hang") {
    test::Watchdog watchdog("shutdown with a stuck job", 60s);
    // The counter is never signalled and never destroyed (its waiter stays linked forever).
    alignas(Counter) static unsigned char storage[sizeof(Counter)];
    Counter* never = ::new (storage) Counter();
    never->add(1);
    std::atomic<bool> passed_wait{false};
    Counter done;
    {
      JobSystem js{test::config_with(2)};
      js.run(done, [&] {
        this_fiber::wait(*never);
        passed_wait.store(true);
      });
      while (js.stats().fibers_in_use < 3) std::this_thread::yield();
    }  // prints the report on stderr
    CHECK_FALSE(passed_wait.load());
    CHECK(done.pending() == 1);  // the stuck job never ended
    // `done` still counts the stuck job: release it by hand so its destructor is quiet.
    done.signal();
  }

  TEST_CASE("a counter signalled after the system is gone wakes its stuck jobs harmlessly") {
    // The stuck jobs' wait nodes (in a fiber record, in a coroutine frame) stay linked in the
    // counter: the signal must not touch freed fiber records or a freed scheduler (ASan) and
    // must not resume them.
    test::Watchdog watchdog("signal after shutdown", 60s);
    Counter user;
    user.add(1);
    std::atomic<int> suspended{0};
    std::atomic<int> resumed{0};
    alignas(Counter) static unsigned char storage[sizeof(Counter)];
    Counter* done = ::new (storage) Counter();  // counts jobs that never end: never destroyed
    {
      JobSystem js{test::config_with(2)};
      js.run(*done, [&] {
        suspended.fetch_add(1);
        this_fiber::wait(user);
        resumed.fetch_add(1);
      });
      js.run(*done, [&](Context& ctx) -> Task<> {
        suspended.fetch_add(1);
        co_await ctx.wait(user);
        resumed.fetch_add(1);
      });
      while (suspended.load() != 2 || js.stats().fibers_in_use < 3) std::this_thread::yield();
      std::this_thread::sleep_for(10ms);  // let the plain job's fiber finish suspending
    }                                     // prints the reports on stderr
    user.signal();                        // drains both nodes
    std::this_thread::sleep_for(10ms);
    CHECK(resumed.load() == 0);
    CHECK(user.done());
    CHECK(done->pending() == 2);
  }

  TEST_CASE("destruction with a coroutine job suspended forever counts it and does not hang") {
    // A suspended coroutine job holds no fiber: Stats::coroutine_jobs_alive counts it, and the
    // destructor reports it on stderr. Its frame stays allocated (reachable from the counter's
    // wait list, so LeakSanitizer does not flag it).
    test::Watchdog watchdog("shutdown with a stuck coroutine job", 60s);
    alignas(Counter) static unsigned char storage[sizeof(Counter)];
    Counter* never = ::new (storage) Counter();
    never->add(1);
    std::atomic<bool> started{false};
    std::atomic<bool> passed_wait{false};
    Counter done;
    {
      JobSystem js{test::config_with(2)};
      js.run(done, [&](Context& ctx) -> Task<> {
        started.store(true);
        co_await ctx.wait(*never);
        passed_wait.store(true);
      });
      while (!started.load()) std::this_thread::yield();
      CHECK(js.stats().coroutine_jobs_alive == 1);
    }  // prints the report on stderr
    CHECK_FALSE(passed_wait.load());
    CHECK(done.pending() == 1);
    done.signal();
  }

  TEST_CASE("write_diagnostics reports workers and the counter a suspended fiber waits on") {
    test::Watchdog watchdog("diagnostics", 60s);
    JobSystem js{test::config_with(2)};
    Counter gate;
    gate.add(1);
    Counter done;
    js.run(done, [&gate] { this_fiber::wait(gate); });
    auto snapshot = [] {
      std::FILE* file = std::tmpfile();
      REQUIRE(file != nullptr);
      write_diagnostics(file);
      std::rewind(file);
      std::string text;
      char buffer[512];
      while (std::fgets(buffer, sizeof buffer, file) != nullptr) text += buffer;
      std::fclose(file);
      return text;
    };
    // The report is a snapshot: fibers_in_use counts the waiter's new fiber a moment before the
    // waiter's own fiber is marked suspended (seen once in a loaded run). Take snapshots until
    // the suspension shows, for at most 10 s; the checks below then say what is missing.
    std::string report = snapshot();
    for (int tries = 0; report.find("waits on counter") == std::string::npos && tries < 1'000;
         ++tries) {
      std::this_thread::sleep_for(10ms);
      report = snapshot();
    }
    INFO(report);
    CHECK(report.find("worker 0:") != std::string::npos);
    CHECK(report.find("worker 1:") != std::string::npos);
    CHECK(report.find("waits on counter") != std::string::npos);
    // The counter's address only: the report never reads a counter, which may be dead.
    char address[64];
    std::snprintf(address, sizeof address, "waits on counter %p\n", static_cast<void*>(&gate));
    CHECK(report.find(address) != std::string::npos);
    gate.signal();
    js.wait(done);
  }

  TEST_CASE("stats count jobs, switches and the fiber high-water mark") {
    JobSystem js{test::config_with(2)};
    Counter done;
    Counter gate;
    gate.add(1);
    js.run(done, [&gate](Context& ctx) {
      Counter children;
      for (int i = 0; i < 10; ++i) {
        ctx.spawn(children, [] { std::this_thread::sleep_for(100us); });
      }
      this_fiber::wait(children);
      this_fiber::wait(gate);  // released by the main thread: a real suspension
    });
    while (js.stats().fibers_in_use < 3) std::this_thread::yield();
    gate.signal();
    js.wait(done);
    const Stats stats = js.stats();
    CHECK(stats.jobs_run == 11);
    CHECK(stats.fiber_switches >= 2);  // the parent suspended and was resumed
    CHECK(stats.fibers_in_use_high_water >= 3);
    CHECK(stats.fibers_in_use == 2);
  }

  TEST_CASE("stats add up the time idle workers slept, and nothing for a spinning system") {
    for (const IdlePolicy policy : {IdlePolicy::Park, IdlePolicy::Spin}) {
      CAPTURE(static_cast<int>(policy));
      Config config = test::config_with(1);
      config.idle_policy = policy;
      const auto start = std::chrono::steady_clock::now();
      JobSystem js{config};
      Counter warm;
      js.run(warm, [] {});
      js.wait(warm);
      const Stats before = js.stats();
      // The worker runs out of work: it parks (or spins). A wake ends the park, which is
      // counted when it ends. On a loaded machine the worker may run late and park for only
      // part of a 50 ms sleep, so sleep and wake again (at most 20 times) until 40 ms of
      // parking were counted; a system that never counts its parks fails after the 20th.
      Stats after = before;
      for (int cycle = 0; cycle < 20; ++cycle) {
        std::this_thread::sleep_for(50ms);
        Counter wake;
        js.run(wake, [] {});
        js.wait(wake);
        after = js.stats();
        if (policy == IdlePolicy::Spin || after.parked_ns - before.parked_ns >= 40'000'000u) break;
      }
      const auto elapsed_ns =
          static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                         std::chrono::steady_clock::now() - start)
                                         .count());
      CHECK(after.parked_ns <= elapsed_ns);  // one worker: never more than the wall time
      if (policy == IdlePolicy::Park) {
        // A park is counted when it begins: on a loaded machine the worker may already be in
        // the park that spans the first sleep when `before` is read.
        CHECK(after.parks >= 1);
        CHECK(after.parked_ns - before.parked_ns >= 40'000'000u);
      } else {
        CHECK(after.parks == 0);
        CHECK(after.parked_ns == 0);
      }
    }
  }
}
