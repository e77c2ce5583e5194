// Tracing: per-worker timelines exported as Chrome Trace Event JSON.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <string>
#include <thread>

#include "support/config.hpp"
#include "support/trace_json.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;
using test::count;
using test::trace_text;

TEST_SUITE("trace") {
  TEST_CASE("a traced run writes job segments, suspends and resumes per worker as JSON") {
    test::Watchdog watchdog("trace", 60s);
    JobSystem js{test::traced_config(2)};
    Counter gate;
    gate.add(1);
    Counter done;
    js.run(done, [](Context& ctx) -> Task<> {
      Counter parts;
      for (int i = 0; i < 50; ++i) ctx.spawn(parts, [] {});
      co_await ctx.wait(parts);
    });
    js.run(done, [&gate] {
      this_fiber::wait(gate);  // a real fiber suspension, resumed when the main thread signals
    });
    while (js.stats().fibers_in_use < 3) std::this_thread::yield();  // the waiter holds a fiber
    gate.signal();
    js.wait(done);
    const std::string json = trace_text(js, "fiberjob_trace_test.json");
    REQUIRE_FALSE(json.empty());
    CHECK(json.rfind("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[", 0) == 0);
    CHECK(count(json, "{") == count(json, "}"));  // balanced objects
    CHECK(count(json, "\"name\":\"thread_name\"") == 2);
    CHECK(count(json, "\"name\":\"job\",\"cat\":\"job\",\"ph\":\"X\"") >= 51);
    CHECK(count(json, "\"name\":\"suspend\"") >= 1);
    CHECK(count(json, "\"name\":\"resume\"") >= 1);
    CHECK(json.find("\"dropped_events\":0") != std::string::npos);
  }

  TEST_CASE("a job spawned with JobOptions::name shows that name in the trace") {
    test::Watchdog watchdog("trace names", 60s);
    JobSystem js{test::traced_config(2)};
    Counter gate;
    gate.add(1);
    Counter done;
    js.run(done, JobOptions{.name = "navmesh \"build\""}, [] {});
    js.run(done, JobOptions{.name = "physics"}, [&gate] {
      this_fiber::wait(gate);  // two run segments, both named
    });
    js.run(done, [] {});  // unnamed: "job"
    while (js.stats().fibers_in_use < 3) std::this_thread::yield();
    gate.signal();
    js.wait(done);
    const std::string json = trace_text(js, "fiberjob_trace_names_test.json");
    CHECK(count(json, "\"name\":\"physics\",\"cat\":\"job\",\"ph\":\"X\"") == 2);
    CHECK(count(json, "\"name\":\"navmesh \\\"build\\\"\",\"cat\":\"job\"") == 1);  // escaped
    CHECK(count(json, "\"name\":\"job\",\"cat\":\"job\",\"ph\":\"X\"") >= 1);
  }

  TEST_CASE("a coroutine job's segments are named coroutine, or by its JobOptions::name") {
    test::Watchdog watchdog("trace coroutine names", 60s);
    JobSystem js{test::traced_config(2)};
    Counter done;
    js.run(done, [](Context&) -> Task<> { co_return; });  // one segment, never suspends
    js.run(done, JobOptions{.name = "ai agent"}, [](Context& ctx) -> Task<> {
      co_await ctx.yield();  // two segments (the second resumed from the yield queue), both named
    });
    js.wait(done);
    // A coroutine job's last segment is recorded before its end signals `done`: the trace
    // taken as soon as the wait returns holds it.
    const std::string named = "\"name\":\"ai agent\",\"cat\":\"coroutine\",\"ph\":\"X\"";
    const std::string unnamed = "\"name\":\"coroutine\",\"cat\":\"coroutine\",\"ph\":\"X\"";
    const std::string json = trace_text(js, "fiberjob_trace_coroutine_names_test.json");
    CHECK(count(json, unnamed) == 1);
    CHECK(count(json, named) == 2);
    CHECK(count(json, "\"cat\":\"job\",\"ph\":\"X\"") == 0);  // no plain job ran
  }

  TEST_CASE("a named coroutine job keeps its name after hops to and from an attached thread") {
    test::Watchdog watchdog("trace hop names", 60s);
    Config config = test::traced_config(2);
    config.attachable_threads = 1;
    JobSystem js{config};
    AttachedWorker main_thread(js);
    const AttachedThread target = main_thread;
    Counter done;
    js.run(done, JobOptions{.name = "presenter"}, [target](Context& ctx) -> Task<> {
      co_await ctx.resume_on(target);  // runs inside this thread's wait below
      co_await ctx.resume_on_any();    // back to a worker thread: a new segment there
    });
    js.wait(done);
    const std::string named = "\"name\":\"presenter\",\"cat\":\"coroutine\",\"ph\":\"X\"";
    const std::string unnamed = "\"name\":\"coroutine\",\"cat\":\"coroutine\",\"ph\":\"X\"";
    const std::string json = trace_text(js, "fiberjob_trace_hop_names_test.json");
    CHECK(count(json, unnamed) == 0);  // every segment, those after a hop too, has the name
    CHECK(count(json, named) >= 2);
  }

  TEST_CASE("a trace written as soon as a wait returns holds the last segment of every job") {
    // The job that signals `done` last is a coroutine resumed by a timer: its last segment
    // ends with its final suspend, which records it before the signal that ends the wait.
    test::Watchdog watchdog("trace last segment", 60s);
    JobSystem js{test::traced_config(2)};
    const std::string sleeper = "\"name\":\"sleeper\",\"cat\":\"coroutine\",\"ph\":\"X\"";
    const std::string plain = "\"name\":\"plain\",\"cat\":\"job\",\"ph\":\"X\"";
    for (int frame = 1; frame <= 20; ++frame) {
      Counter done;
      js.run(done, JobOptions{.name = "plain"}, [] {});
      js.run(done, JobOptions{.name = "sleeper"}, [](Context& ctx) -> Task<> {
        // Three segments, the later two resumed by the timer. 5 ms, not less: a sleep whose
        // deadline has passed by the time it is awaited completes without suspending (seen
        // with 100 us in the first, cold frame under qemu-user), and the count below would
        // then be short.
        co_await ctx.sleep_for(5ms);
        co_await ctx.sleep_for(5ms);
      });
      js.wait(done);
      const std::string json = trace_text(js, "fiberjob_trace_last_segment_test.json");
      INFO("frame ", frame);
      CHECK(count(json, sleeper) == static_cast<std::size_t>(3 * frame));
      CHECK(count(json, plain) == static_cast<std::size_t>(frame));
    }
  }

  TEST_CASE("only the slots for attached threads that were used get a track") {
    test::Watchdog watchdog("trace slots", 60s);
    Config config = test::traced_config(2);
    config.attachable_threads = 3;  // slots 2, 3 and 4; only slot 2 is used
    JobSystem js{config};
    {
      AttachedWorker main_thread(js);
      Counter done;
      main_thread.spawn(done, [] {});
      CHECK(main_thread.run_pending() == 1);  // runs on the attached thread: its track
      js.wait(done);
    }
    const std::string json = trace_text(js, "fiberjob_trace_slots_test.json");
    CHECK(count(json, "attached thread (slot 2)") == 1);
    CHECK(count(json, "attached thread (slot 3)") == 0);
    CHECK(count(json, "attached thread (slot 4)") == 0);
    CHECK(count(json, "\"name\":\"thread_name\"") == 3);  // 2 workers and slot 2
  }

  TEST_CASE("write_trace without Config::tracing throws naming the field") {
    JobSystem js{test::config_with(1)};
    try {
      js.write_trace("never-written.json");
      FAIL("write_trace did not throw");
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find("Config::tracing") != std::string::npos);
    }
  }

  TEST_CASE("a full trace buffer drops events and says how many") {
    Config config = test::traced_config(1);
    config.trace_events_per_worker = 4;
    JobSystem js{config};
    Counter done;
    for (int i = 0; i < 20; ++i) js.run(done, [] {});
    js.wait(done);
    const std::string json = trace_text(js, "fiberjob_trace_full.json");
    CHECK(count(json, "\"ph\":\"X\"") + count(json, "\"ph\":\"i\"") <= 4);
    CHECK(json.find("\"dropped_events\":0") == std::string::npos);
  }
}

void zone_compiled_out();  // trace_no_trace.cpp: a FIBERJOB_TRACE_SCOPE under FIBERJOB_NO_TRACE

TEST_SUITE("trace zones") {
  TEST_CASE("zones go to the running worker's track, or to the main-thread track off a worker") {
    test::Watchdog watchdog("trace zones", 60s);
    JobSystem js{test::traced_config(2)};
    js.trace_frame_mark(7);
    {
      FIBERJOB_TRACE_SCOPE("main \"quoted\" zone");  // escaped in the JSON
      Counter done;
      for (int i = 0; i < 4; ++i) {
        js.run(done, [] {
          FIBERJOB_TRACE_SCOPE("physics");
          volatile int sink = 0;
          for (int k = 0; k < 1000; ++k) sink = sink + k;
        });
      }
      js.run(done, [] { zone_compiled_out(); });
      js.wait(done);
    }
    const std::string json = trace_text(js, "fiberjob_trace_zones_test.json");
    CHECK(count(json, "\"name\":\"physics\",\"cat\":\"zone\"") == 4);
    CHECK(count(json,
                "\"tid\":2,\"args\":{\"name\":\"main thread (threads that are not workers)"
                "\"}") == 1);
    CHECK(count(json, "\"name\":\"main \\\"quoted\\\" zone\",\"cat\":\"zone\"") == 1);
    // The main thread's zone and the frame mark are on its track (tid 2, after the 2 workers).
    const std::size_t main_zone = json.find("\"name\":\"main \\\"quoted\\\" zone\"");
    REQUIRE(main_zone != std::string::npos);
    CHECK(json.find("\"tid\":2}", main_zone) != std::string::npos);
    CHECK(count(json, "\"name\":\"frame 7\",\"cat\":\"frame\",\"ph\":\"i\",\"s\":\"g\"") == 1);
    CHECK(count(json, "compiled_out") == 0);
  }

  TEST_CASE("without a traced job system a zone records nothing and costs no clock read") {
    JobSystem js{test::config_with(1)};
    Counter done;
    js.run(done, [] { FIBERJOB_TRACE_SCOPE("untraced"); });
    js.wait(done);
    CHECK(detail::g_traced_systems.load() == 0);
    CHECK_THROWS_AS(js.write_trace("unused.json"), Error);
    js.trace_frame_mark(1);  // a no-op, not an error
  }
}
