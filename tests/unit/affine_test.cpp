// Thread-affine jobs: AttachedThread::spawn, co_await ctx.resume_on(attached) /
// ctx.resume_on_any(), run_pending, and what happens to affine jobs when the thread detaches.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <thread>

#include "support/config.hpp"
#include "support/thread_id.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

Config attachable(std::uint32_t workers) {
  Config config = test::config_with(workers);
  config.attachable_threads = 1;
  return config;
}

/// Runs the attached thread's frame loop until `counter` is done: run_pending, then give the
/// CPU away (a frame's other work would go there).
std::size_t frame_loop_until(AttachedWorker& attached, Counter& counter) {
  std::size_t ran = 0;
  while (!counter.done()) {
    ran += attached.run_pending();
    std::this_thread::yield();
  }
  return ran;
}

/// A plain job that suspends its fiber: it waits for a job that only another thread runs (the
/// waiter's own worker holds nothing of that counter to run inline).
void suspend_once(JobSystem& js) {
  Counter released;
  released.add(1);
  Counter helper;
  js.run(helper, [&released] { released.signal(); });
  this_fiber::wait(released);
  this_fiber::wait(helper);
}

}  // namespace

TEST_SUITE("affine") {
  TEST_CASE("coroutines hop on and off the attached thread many times, from two workers") {
    const test::Watchdog watchdog("affine hops", 120s);
    JobSystem js(attachable(2));
    AttachedWorker main_thread(js);
    const AttachedThread target = main_thread;
    const std::thread::id main_id = test::current_thread_id();
    constexpr int kCoroutines = 4;
    constexpr int kHops = 200;
    std::atomic<int> on_main{0}, off_main{0}, wrong{0};
    Counter done;
    for (int c = 0; c < kCoroutines; ++c) {
      js.run(done, [&, target](Context& ctx) -> Task<> {
        for (int hop = 0; hop < kHops; ++hop) {
          co_await ctx.resume_on(target);
          (test::current_thread_id() == main_id ? on_main : wrong).fetch_add(1);
          co_await ctx.resume_on_any();
          (test::current_thread_id() != main_id ? off_main : wrong).fetch_add(1);
        }
      });
    }
    const std::size_t ran = frame_loop_until(main_thread, done);
    js.wait(done);
    CHECK(wrong.load() == 0);
    CHECK(on_main.load() == kCoroutines * kHops);
    CHECK(off_main.load() == kCoroutines * kHops);
    CHECK(ran == static_cast<std::size_t>(kCoroutines * kHops));
  }

  TEST_CASE("hops onto a thread that waits in JobSystem::wait run inside its wait") {
    const test::Watchdog watchdog("affine hops in a wait", 120s);
    JobSystem js(attachable(2));
    AttachedWorker main_thread(js);
    const AttachedThread target = main_thread;
    const std::thread::id main_id = test::current_thread_id();
    std::atomic<int> on_main{0}, wrong{0};
    Counter done;
    for (int c = 0; c < 4; ++c) {
      js.run(done, [&, target](Context& ctx) -> Task<> {
        for (int hop = 0; hop < 100; ++hop) {
          co_await ctx.resume_on(target);
          (test::current_thread_id() == main_id ? on_main : wrong).fetch_add(1);
          co_await ctx.resume_on_any();
        }
      });
    }
    js.wait(done);
    CHECK(wrong.load() == 0);
    CHECK(on_main.load() == 400);
  }

  TEST_CASE("resume_on_any leaves an attached thread that waits, for a worker thread") {
    const test::Watchdog watchdog("resume_on_any from a waiting attached thread", 120s);
    for (const std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      JobSystem js(attachable(workers));
      AttachedWorker main_thread(js);
      const AttachedThread target = main_thread;
      const std::thread::id main_id = test::current_thread_id();
      constexpr int kCoroutines = 4;
      constexpr int kHops = 100;
      std::atomic<int> on_main{0}, left{0}, stayed{0};
      Counter done;
      for (int c = 0; c < kCoroutines; ++c) {
        js.run(done, [&, target](Context& ctx) -> Task<> {
          for (int hop = 0; hop < kHops; ++hop) {
            co_await ctx.resume_on(target);
            if (test::current_thread_id() == main_id) on_main.fetch_add(1);
            co_await ctx.resume_on_any();
            (test::current_thread_id() == main_id ? stayed : left).fetch_add(1);
          }
        });
      }
      js.wait(done);  // the attached thread runs jobs meanwhile, but never a resume_on_any hop
      CHECK(on_main.load() == kCoroutines * kHops);
      CHECK(stayed.load() == 0);
      CHECK(left.load() == kCoroutines * kHops);
    }
  }

  TEST_CASE("resume_on_any in a task that sync_wait waits for on an attached thread") {
    JobSystem js(attachable(2));
    AttachedWorker main_thread(js);
    const AttachedThread target = main_thread;
    const std::thread::id main_id = test::current_thread_id();
    Context& ctx = js.context();
    auto hops = [](Context& c, AttachedThread on, std::thread::id home) -> Task<int> {
      int off_home = 0;
      for (int hop = 0; hop < 50; ++hop) {
        co_await c.resume_on_any();
        if (test::current_thread_id() != home) ++off_home;
        co_await c.resume_on(on);
        if (test::current_thread_id() != home) co_return -1;
      }
      co_return off_home;
    };
    CHECK(sync_wait(js, hops(ctx, target, main_id)) == 50);
  }

  TEST_CASE("resume_on the thread the coroutine is on, and resume_on_any on a worker, go on") {
    JobSystem js(attachable(2));
    AttachedWorker main_thread(js);
    const AttachedThread target = main_thread;
    const std::thread::id main_id = test::current_thread_id();
    std::atomic<bool> ok{false};
    Counter done;
    main_thread.spawn(done, [&, target](Context& ctx) -> Task<> {
      co_await ctx.resume_on(target);  // already there: no hop
      const bool here = test::current_thread_id() == main_id;
      co_await ctx.resume_on_any();
      const std::thread::id worker = test::current_thread_id();
      co_await ctx.resume_on_any();  // on a worker already: no hop
      ok.store(here && worker != main_id && test::current_thread_id() == worker);
    });
    CHECK(main_thread.run_pending() == 1);
    js.wait(done);  // runs jobs meanwhile, but never the resume_on_any hop
    CHECK(ok.load());
  }

  TEST_CASE("affine plain jobs run only on their thread, also after they suspend") {
    const test::Watchdog watchdog("affine plain jobs", 120s);
    for (const bool frame_loop : {false, true}) {
      CAPTURE(frame_loop);
      JobSystem js(attachable(2));
      AttachedWorker main_thread(js);
      const AttachedThread target = main_thread;
      const std::thread::id main_id = test::current_thread_id();
      constexpr int kJobs = 200;
      std::atomic<int> right{0}, wrong{0};
      Counter spawners, done;
      for (int s = 0; s < 2; ++s) {
        js.run(spawners, [&, target] {
          for (int i = 0; i < kJobs / 2; ++i) {
            target.spawn(done, [&, i] {
              (test::current_thread_id() == main_id ? right : wrong).fetch_add(1);
              if (i % 4 == 0) {
                suspend_once(js);
                (test::current_thread_id() == main_id ? right : wrong).fetch_add(1);
              }
            });
          }
        });
      }
      js.wait(spawners);
      if (frame_loop) {
        frame_loop_until(main_thread, done);
      }
      js.wait(done);
      CHECK(wrong.load() == 0);
      CHECK(right.load() == kJobs + kJobs / 4);
    }
  }

  TEST_CASE("affine coroutine jobs start on their thread; their exceptions reach the counter") {
    JobSystem js(attachable(2));
    AttachedWorker main_thread(js);
    const std::thread::id main_id = test::current_thread_id();
    std::atomic<int> right{0};
    Counter done;
    for (int i = 0; i < 10; ++i) {
      main_thread.spawn(done, [&](Context& ctx) -> Task<> {
        if (test::current_thread_id() == main_id) right.fetch_add(1);
        co_await ctx.resume_on_any();
      });
    }
    Counter failed;
    main_thread.spawn(failed, [] { throw std::runtime_error("affine job failed"); });
    CHECK(main_thread.run_pending() == 11);
    js.wait(done);
    CHECK(right.load() == 10);
    CHECK_THROWS_WITH_AS(js.wait(failed), "affine job failed", std::runtime_error);
  }

  TEST_CASE("run_pending in a frame loop runs what is queued now, never blocks") {
    JobSystem js(attachable(2));
    AttachedWorker main_thread(js);
    CHECK(main_thread.run_pending() == 0);  // nothing queued: returns at once
    int uploads = 0;                        // only the attached thread touches it
    Counter frame;
    for (int i = 0; i < 3; ++i) main_thread.spawn(frame, [&] { ++uploads; });
    CHECK(main_thread.run_pending() == 3);
    CHECK(uploads == 3);
    CHECK(frame.done());
    // A job queued by an affine job waits for the next frame.
    const AttachedThread target = main_thread;
    main_thread.spawn(frame, [&, target] { target.spawn(frame, [&] { ++uploads; }); });
    CHECK(main_thread.run_pending() == 1);
    CHECK(uploads == 3);
    CHECK(main_thread.run_pending() == 1);
    CHECK(uploads == 4);
    CHECK(main_thread.run_pending() == 0);
    js.wait(frame);
  }

  TEST_CASE("detaching runs the pending affine jobs; later sends to the thread throw") {
    const test::Watchdog watchdog("affine detach", 120s);
    JobSystem js(attachable(2));
    const std::thread::id main_id = test::current_thread_id();
    std::atomic<int> right{0}, wrong{0};
    Counter done;
    std::optional<AttachedThread> stale;
    {
      AttachedWorker main_thread(js);
      const AttachedThread target = main_thread;
      stale = target;
      Counter spawners;
      js.run(spawners, [&, target] {
        for (int i = 0; i < 50; ++i) {
          target.spawn(done, [&, i] {
            if (i % 10 == 0) suspend_once(js);
            (test::current_thread_id() == main_id ? right : wrong).fetch_add(1);
          });
        }
      });
      // Not js.wait: a waiting attached thread runs its affine jobs.
      while (!spawners.done()) std::this_thread::yield();
      js.wait(spawners);
      CHECK(!done.done());  // nothing ran them yet: this thread never waited
    }                       // ~AttachedWorker runs them
    CHECK(done.done());
    CHECK(right.load() == 50);
    CHECK(wrong.load() == 0);
    Counter late;
    CHECK_THROWS_AS(stale->spawn(late, [] {}), Error);
    CHECK(late.done());
    // A coroutine that hops onto the detached thread gets the error at its co_await.
    std::atomic<bool> threw{false};
    js.run(late, [&, target = *stale](Context& ctx) -> Task<> {
      try {
        co_await ctx.resume_on(target);
      } catch (const Error& error) {
        threw.store(error.code() == ErrorCode::AttachMisuse);
      }
    });
    js.wait(late);
    CHECK(threw.load());
  }

  TEST_CASE("run_pending off the attached thread, or from a job, throws AttachMisuse") {
    JobSystem js(attachable(2));
    AttachedWorker main_thread(js);
    bool threw_elsewhere = false;
    std::thread([&] {
      try {
        main_thread.run_pending();
      } catch (const Error& error) {
        threw_elsewhere = error.code() == ErrorCode::AttachMisuse;
      }
    }).join();
    CHECK(threw_elsewhere);
    std::atomic<bool> threw_in_job{false};
    Counter done;
    main_thread.spawn(done, [&] {
      try {
        main_thread.run_pending();
      } catch (const Error& error) {
        threw_in_job.store(error.code() == ErrorCode::AttachMisuse);
      }
    });
    js.wait(done);
    CHECK(threw_in_job.load());
  }

  TEST_CASE("resume_on a thread attached to another job system throws; the coroutine stays") {
    const test::Watchdog watchdog("affine other system", 120s);
    JobSystem job_system(test::config_with(2));
    JobSystem other(attachable(1));
    AttachedWorker other_thread(other);
    const AttachedThread target = other_thread;
    std::atomic<bool> threw{false}, stayed{false};
    Counter done;
    job_system.run(done, [&](Context& ctx) -> Task<> {
      try {
        co_await ctx.resume_on(target);
      } catch (const Error& error) {
        threw.store(error.code() == ErrorCode::AttachMisuse &&
                    std::string(error.what()).find("another JobSystem") != std::string::npos);
      }
      stayed.store(ctx.worker_index() != Context::kNotAWorker);  // still on its own workers
    });
    job_system.wait(done);
    CHECK(threw.load());
    CHECK(stayed.load());
    CHECK(other_thread.run_pending() == 0);  // nothing was queued on the other system's thread
  }

  TEST_CASE("an affine job spawned with a stop token is cancelled in its wait, on its thread") {
    const test::Watchdog watchdog("affine stoppable", 120s);
    JobSystem js(attachable(2));
    AttachedWorker main_thread(js);
    const std::thread::id main_id = test::current_thread_id();
    std::stop_source stop;
    Counter never;
    never.add(1);  // nothing signals it: only the stop ends the wait
    std::atomic<bool> cancelled{false}, on_main{false}, waiting{false};
    Counter done;
    main_thread.spawn(
        done,
        [&] {
          waiting.store(true);
          try {
            this_fiber::wait(never);
          } catch (const Error& error) {
            cancelled.store(error.code() == ErrorCode::Cancelled);
            on_main.store(test::current_thread_id() == main_id);
          }
        },
        stop.get_token());
    std::thread requester([&] {
      while (!waiting.load()) std::this_thread::yield();
      std::this_thread::sleep_for(10ms);  // let the job suspend in its wait
      stop.request_stop();
    });
    js.wait(done);  // the attached thread runs the job here, and resumes it after the stop
    requester.join();
    CHECK(cancelled.load());
    CHECK(on_main.load());
    never.signal();
  }
}
