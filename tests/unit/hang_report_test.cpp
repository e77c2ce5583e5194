// The hang watchdog's report (Config::hang_report_after_ms) and write_diagnostics: suspended
// coroutine jobs are listed with their names and what each waits on; a thread attached to the
// job system that runs its own code holds the report off; a thread that is neither a worker
// nor attached may still wake the jobs, which the report says.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "support/captured_stderr.hpp"
#include "support/config.hpp"
#include "support/trace_json.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

/// The part of a report's line "coroutine job N 'NAME': waits on WHAT 0x...; await chain ..."
/// for a coroutine job named `name` waiting on `what` at `object`.
std::string coroutine_wait(const char* name, const char* what, const void* object) {
  char line[160];
  std::snprintf(line, sizeof line, " '%s': waits on %s %p;", name, what, object);
  return std::string(line);
}

/// Waits (bounded by the test's Watchdog) until stderr holds `last`, a part of the report's
/// end (stderr is unbuffered: the report may be read half written), and returns it all.
std::string wait_for_report(const test::CapturedStderr& captured, const std::string& last) {
  for (;;) {
    const std::string text = captured.text();
    if (text.find(last) != std::string::npos) return text;
    std::this_thread::sleep_for(1ms);
  }
}

/// write_diagnostics' report, written to a string.
std::string diagnostics_report() {
  char* text = nullptr;
  std::size_t size = 0;
  std::FILE* out = open_memstream(&text, &size);
  if (out == nullptr) std::abort();  // no doctest assertion off the test's thread
  write_diagnostics(out);
  std::fclose(out);
  std::string report(text, size);
  std::free(text);
  return report;
}

}  // namespace

TEST_SUITE("hang report") {
  TEST_CASE("the report lists every suspended coroutine job, its name and what it waits on") {
    test::Watchdog watchdog("hang report: coroutine jobs", 60s);
    test::CapturedStderr captured;
    Config config = test::config_with(2);
    config.hang_report_after_ms = 10;
    config.track_coroutine_jobs = true;
    std::string text;
    Counter held;
    held.add(1);
    Event event;
    Mutex mutex;
    Semaphore semaphore(0);
    {
      JobSystem js{config};
      Counter done;
      // One job spawns the others while it runs (holding the mutex), so the workers cannot
      // all idle before every coroutine job reached its wait.
      js.run(done, {.name = "holder"}, [&](Context& ctx) {
        std::scoped_lock lock(mutex);
        ctx.spawn(done, {.name = "on_counter"},
                  [&](Context& c) -> Task<> { co_await c.wait(held); });
        ctx.spawn(done, {.name = "on_event"}, [&](Context&) -> Task<> { co_await event; });
        ctx.spawn(done, {.name = "on_mutex"},
                  [&](Context&) -> Task<> { auto guard = co_await mutex.scoped_lock(); });
        ctx.spawn(done, {.name = "on_semaphore"},
                  [&](Context&) -> Task<> { co_await semaphore.acquire_async(); });
        this_fiber::wait(held);
      });
      // The fibers' lines come last.
      text = wait_for_report(captured, "(job 'holder'): waits on counter");
      held.signal();
      event.set();
      semaphore.release(1);
      js.wait(done);
    }
    INFO(text);
    CHECK(text.find(coroutine_wait("on_counter", "counter", &held)) != std::string::npos);
    CHECK(text.find(coroutine_wait("on_event", "Event", &event)) != std::string::npos);
    CHECK(text.find(coroutine_wait("on_mutex", "Mutex", &mutex)) != std::string::npos);
    CHECK(text.find(coroutine_wait("on_semaphore", "Semaphore", &semaphore)) != std::string::npos);
    CHECK(text.find("(job 'holder'): waits on counter") != std::string::npos);
    CHECK(text.find("coroutine jobs alive (Config::track_coroutine_jobs): 4") != std::string::npos);
  }

  TEST_CASE("without track_coroutine_jobs the report counts coroutine jobs and names the field") {
    test::Watchdog watchdog("hang report: untracked coroutine jobs", 60s);
    test::CapturedStderr captured;
    Config config = test::config_with(2);
    config.hang_report_after_ms = 10;
    Counter held;
    held.add(1);
    std::string text;
    {
      JobSystem js{config};
      Counter done;
      js.run(done, [&](Context& ctx) -> Task<> { co_await ctx.wait(held); });
      text = wait_for_report(captured, "what it waits on\n");
      held.signal();
      js.wait(done);
    }
    INFO(text);
    CHECK(text.find("coroutine jobs alive: 1, not listed: Config::track_coroutine_jobs lists "
                    "each with its await chain and what it waits on") != std::string::npos);
  }

  TEST_CASE("an attached thread running its own code holds the report off; a plain one does not") {
    // The common "the main thread opens a gate later" pattern: while the thread that will set
    // the Event is attached and outside any wait, the stuck-looking jobs are not reported.
    // Once it is detached, only the report's note says that it may still wake them.
    test::Watchdog watchdog("hang report: attached thread", 60s);
    test::CapturedStderr captured;
    Config config = test::config_with(2);
    config.attachable_threads = 1;
    config.hang_report_after_ms = 10;
    JobSystem js{config};
    Event gate;
    Counter done;
    std::atomic<bool> attached{false};
    js.run(done, [&] {
      while (!attached.load()) std::this_thread::yield();  // running: no report meanwhile
      gate.wait();
    });
    {
      AttachedWorker main_thread(js);
      attached = true;
      while (js.stats().fibers_in_use < 3) std::this_thread::yield();  // the waiter's fiber
      std::this_thread::sleep_for(200ms);  // twenty watchdog periods of the main thread's code
      CHECK(captured.text().find("hang_report_after_ms") == std::string::npos);
    }
    // Detached: nothing the job system knows of can set the gate now.
    const std::string text = wait_for_report(captured, "waits on Event ");
    INFO(text);
    CHECK(text.find("A thread that is neither a worker nor attached may still wake them") !=
          std::string::npos);
    CHECK(text.find("waits on Event") != std::string::npos);
    gate.set();
    js.wait(done);
  }

  TEST_CASE("the line of an attached thread's own stack names the job that waits there") {
    // The attached thread spawns a named job and its js.wait runs it inline on the thread's own
    // stack (the only worker is busy), where it waits on an Event: the report's line for that
    // stack carries the job's JobOptions::name, as a pooled fiber's line does.
    test::Watchdog watchdog("hang report: named job on an attached thread's stack", 60s);
    Config config = test::config_with(1);
    config.attachable_threads = 1;
    JobSystem js{config};
    std::atomic<bool> started{false};
    std::atomic<bool> release{false};
    Counter busy;
    js.run(busy, [&] {
      started = true;
      while (!release.load()) std::this_thread::sleep_for(100us);  // keeps the worker busy
    });
    while (!started.load()) std::this_thread::yield();
    Event gate;
    char line[160];
    std::snprintf(line, sizeof line,
                  "attached thread of worker 1, on its own stack (job 'gate waiter'): waits on "
                  "Event %p",
                  static_cast<void*>(&gate));
    std::string report;
    std::thread reader([&] {
      for (;;) {  // until the line appears (bounded by the Watchdog)
        char* text = nullptr;
        std::size_t size = 0;
        std::FILE* out = open_memstream(&text, &size);
        if (out == nullptr) std::abort();  // no doctest assertion off the test's thread
        write_diagnostics(out);
        std::fclose(out);
        report.assign(text, size);
        std::free(text);
        if (report.find(line) != std::string::npos) break;
        std::this_thread::sleep_for(1ms);
      }
      gate.set();
    });
    {
      AttachedWorker main_thread(js);
      Counter done;
      js.run(done, {.name = "gate waiter"}, [&gate] { gate.wait(); });
      js.wait(done);  // runs "gate waiter" here, whose wait suspends this stack
    }
    reader.join();
    release = true;
    js.wait(busy);
    INFO(report);
    CHECK(report.find(line) != std::string::npos);
  }

  TEST_CASE("a plain job's wait for a counter's value names the counter") {
    // this_fiber::wait(counter, target) waits through a waiter record on the fiber's stack;
    // the report names the Counter, as the coroutine form's line does.
    test::Watchdog watchdog("hang report: value wait names the counter", 60s);
    JobSystem js{test::config_with(1)};
    Counter counter;
    counter.add(2);
    char line[160];
    std::snprintf(line, sizeof line, "(job 'value waiter'): waits on a Counter's value %p\n",
                  static_cast<void*>(&counter));
    Counter done;
    js.run(done, {.name = "value waiter"}, [&counter] { this_fiber::wait(counter, 1); });
    std::string report;
    for (;;) {  // until the job waits (bounded by the Watchdog)
      report = diagnostics_report();
      if (report.find("(job 'value waiter'): waits on") != std::string::npos) break;
      std::this_thread::sleep_for(1ms);
    }
    counter.signal();
    js.wait(done);
    counter.signal();
    INFO(report);
    CHECK(report.find(line) != std::string::npos);
  }

  TEST_CASE("an attached thread parked on its own stack for want of a fiber is in phase parked") {
    // One worker, three fibers: the worker's and two held by jobs suspended on `held`, so the
    // attached thread's job finds no fiber to run other jobs on while it waits, and its thread
    // sleeps in the wait: phase "parked", not "starting" (it has run a job).
    test::Watchdog watchdog("hang report: own-stack park phase", 60s);
    Config config = test::config_with(1, 3);
    config.max_fiber_count = 3;
    config.attachable_threads = 1;
    JobSystem js{config};
    Counter held;
    held.add(1);
    Counter holders;
    for (int i = 0; i < 2; ++i) js.run(holders, [&held] { this_fiber::wait(held); });
    while (js.stats().fibers_in_use < 3) std::this_thread::sleep_for(1ms);
    Event gate;
    char waits[160];
    std::snprintf(waits, sizeof waits,
                  "attached thread of worker 1, on its own stack: waits on Event %p",
                  static_cast<void*>(&gate));
    std::string report;
    std::thread reader([&] {
      for (;;) {  // until the thread parks in its wait (bounded by the Watchdog)
        report = diagnostics_report();
        if (report.find(waits) != std::string::npos &&
            report.find("worker 1: attached thread, parked") != std::string::npos) {
          break;
        }
        std::this_thread::sleep_for(1ms);
      }
      gate.set();
    });
    {
      AttachedWorker main_thread(js);
      Counter done;
      main_thread.spawn(done, [&gate] { gate.wait(); });  // affine: runs on this thread only
      main_thread.run_pending();  // runs the job here; no fiber is free: the thread parks
      js.wait(done);
    }
    reader.join();
    held.signal();
    js.wait(holders);
    INFO(report);
    CHECK(report.find("worker 1: attached thread, parked") != std::string::npos);
  }
}
