// Tracing: flow arrows (spawn -> run, signal -> resume) and ring mode (the last N frames).

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <cstdio>
#include <regex>
#include <set>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "support/captured_stderr.hpp"
#include "support/config.hpp"
#include "support/trace_json.hpp"
#include "support/watchdog.hpp"
#include "trace_export.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;
using test::count;
using test::trace_text;

namespace {

/// The ids of the flow events named `name` with phase `ph` ("s" or "f"); fails the test if an
/// id repeats.
std::multiset<long> flow_ids(const std::string& json, const std::string& name,
                             const std::string& ph) {
  const std::regex event("\\{\"name\":\"" + name + "\",\"cat\":\"flow\",\"ph\":\"" + ph +
                         "\",(\"bp\":\"e\",)?\"id\":([0-9]+),");
  std::multiset<long> ids;
  for (auto it = std::sregex_iterator(json.begin(), json.end(), event);
       it != std::sregex_iterator(); ++it) {
    ids.insert(std::stol((*it)[2].str()));
  }
  return ids;
}

/// Checks that the flows named `name` pair up one to one; returns how many there are.
std::size_t paired_flows(const std::string& json, const std::string& name) {
  const std::multiset<long> starts = flow_ids(json, name, "s");
  const std::multiset<long> finishes = flow_ids(json, name, "f");
  CHECK(std::set<long>(starts.begin(), starts.end()).size() == starts.size());  // unique ids
  CHECK(starts == finishes);  // every start has one finish, and no finish is alone
  return starts.size();
}

/// Returns once each of `workers` workers has finished the job segment it was in: runs one job
/// per worker that waits (spinning) until all of them run. A job's last segment is recorded
/// after the job signals its counter, and write_trace leaves out an arrow into a slice not yet
/// recorded, so a test waits for this before writing the trace it counts arrows in.
void settle_workers(JobSystem& js, int workers) {
  std::atomic<int> arrived{0};
  Counter settled;
  for (int i = 0; i < workers; ++i) {
    js.run(settled, [&arrived, workers] {
      arrived.fetch_add(1);
      while (arrived.load() < workers) std::this_thread::yield();
    });
  }
  js.wait(settled);
}

}  // namespace

TEST_SUITE("trace flows") {
  TEST_CASE("an arrow whose start or end slice is not in the trace is left out") {
    // Three spawn arrows on two tracks. Only the first has both ends inside written slices; the
    // second's start slice was lost (a full buffer drops it, a ring overwrites it, or it was
    // still open when write_trace copied the track), the third ends outside any slice.
    using detail::TraceEvent;
    using detail::TraceKind;
    std::vector<detail::TraceTrack> tracks(2);
    tracks[0].tid = 0;
    tracks[0].name = "worker 0";
    tracks[0].copy.events = {TraceEvent{150, 7, nullptr, 0, TraceKind::SpawnFlow},
                             TraceEvent{170, 11, nullptr, 0, TraceKind::SpawnFlow},
                             TraceEvent{100, 200, nullptr, 64, TraceKind::Job},
                             TraceEvent{400, 9, nullptr, 0, TraceKind::SpawnFlow}};
    tracks[1].tid = 1;
    tracks[1].name = "worker 1";
    tracks[1].copy.events = {TraceEvent{160, 7, nullptr, 0, TraceKind::RunFlow},
                             TraceEvent{160, 300, nullptr, 65, TraceKind::Job},
                             TraceEvent{410, 9, nullptr, 0, TraceKind::RunFlow},
                             TraceEvent{405, 500, nullptr, 66, TraceKind::Job},
                             TraceEvent{600, 11, nullptr, 0, TraceKind::RunFlow}};
    std::FILE* file = std::tmpfile();
    REQUIRE(file != nullptr);
    detail::write_trace_json(file, tracks, 0, detail::TraceSummary{});
    std::rewind(file);
    std::string json;
    for (int c = std::fgetc(file); c != EOF; c = std::fgetc(file)) json += static_cast<char>(c);
    std::fclose(file);
    CHECK(paired_flows(json, "spawn") == 1);
    CHECK(json.find("\"ph\":\"s\",\"id\":1,\"ts\":0.150,") != std::string::npos);
    CHECK(json.find("\"ph\":\"f\",\"bp\":\"e\",\"id\":1,\"ts\":0.160,") != std::string::npos);
  }

  TEST_CASE("a spawn and a wake on the workers draw flow arrows to the run and the resume") {
    test::Watchdog watchdog("trace flows", 60s);
    JobSystem js{test::traced_config(2)};
    Counter done;
    // Spawns: ten children spawned from a job, each arrow ends where the child runs.
    js.run(done, [](Context& ctx) {
      Counter parts;
      for (int i = 0; i < 10; ++i) ctx.spawn(parts, [] {});
      this_fiber::wait(parts);
    });
    js.wait(done);
    // A wake on a worker: `first` ends on a worker and its signal resumes `waiter`, which is
    // suspended on it by then (its fiber is counted in use).
    Counter gate;
    gate.add(1);
    Counter first;
    js.run(first, [&gate] { this_fiber::wait(gate); });
    js.run(done, [&first] { this_fiber::wait(first); });
    while (js.stats().fibers_in_use < 4) std::this_thread::yield();  // 2 workers' + 2 waiters
    gate.signal();  // from the main thread: no arrow (no slice to start it from)
    js.wait(done);
    settle_workers(js, 2);
    const std::string json = trace_text(js, "fiberjob_trace_flows.json");
    CHECK(paired_flows(json, "spawn") >= 10);
    CHECK(paired_flows(json, "wake") >= 1);
    CHECK(count(json, "\"name\":\"wake\",\"cat\":\"wake\",\"ph\":\"X\"") >= 1);
  }

  TEST_CASE("a coroutine job woken by a job's signal gets a wake arrow") {
    test::Watchdog watchdog("trace coroutine flows", 60s);
    JobSystem js{test::traced_config(1)};  // one worker: the signaller runs after the link
    Counter gate;
    gate.add(1);  // signalled by hand by the job below
    Counter done;
    js.run(done, [&gate](Context& ctx) -> Task<> {
      Counter side;
      ctx.spawn(side, [&gate] { gate.signal(); });  // not a job of `gate`: not run inline
      co_await ctx.wait(gate);                      // suspends; the spawned job wakes it
      co_await ctx.wait(side);
    });
    js.wait(done);
    settle_workers(js, 1);
    const std::string json = trace_text(js, "fiberjob_trace_coroutine_flows.json");
    CHECK(paired_flows(json, "spawn") == 1);
    CHECK(paired_flows(json, "wake") == 1);
  }

  TEST_CASE("a job with a stop token woken by a job's signal gets a wake arrow") {
    // Its wait links its stop block's node, not its own: the signal's drain claims the block
    // and wakes the waiter, and the arrow must go to the waiter's resume all the same. The
    // token is never stopped, so the drainer always wins the claim.
    test::Watchdog watchdog("trace stoppable flows", 60s);
    for (const bool coroutine : {false, true}) {
      CAPTURE(coroutine);
      JobSystem js{test::traced_config(1)};  // one worker: the signaller runs after the link
      std::stop_source source;
      Counter gate;
      gate.add(1);  // signalled by hand by the job spawned below
      Counter done;
      if (coroutine) {
        js.run(
            done,
            [&gate](Context& ctx) -> Task<> {
              Counter side;
              ctx.spawn(side, [&gate] { gate.signal(); });  // not a job of `gate`: queued
              co_await ctx.wait(gate);                      // suspends; the spawned job wakes it
              co_await ctx.wait(side);
            },
            source.get_token());
      } else {
        js.run(
            done,
            [&gate](Context& ctx) {
              Counter side;
              ctx.spawn(side, [&gate] { gate.signal(); });  // not a job of `gate`: queued
              this_fiber::wait(gate);                       // suspends; the spawned job wakes it
              this_fiber::wait(side);
            },
            source.get_token());
      }
      js.wait(done);
      settle_workers(js, 1);
      const std::string json = trace_text(js, "fiberjob_trace_stoppable_flows.json");
      CHECK(paired_flows(json, "spawn") == 1);
      CHECK(paired_flows(json, "wake") == 1);
    }
  }
}

namespace {

/// Runs `frames` frames of `jobs` jobs each, marking each frame.
void run_frames(JobSystem& js, int frames, int jobs) {
  for (int frame = 0; frame < frames; ++frame) {
    js.trace_frame_mark(static_cast<std::uint64_t>(frame));
    Counter done;
    for (int i = 0; i < jobs; ++i) js.run(done, [] {});
    js.wait(done);
  }
}

}  // namespace

TEST_SUITE("trace ring") {
  TEST_CASE("ring mode writes the last N frames whole and says how much it overwrote") {
    test::Watchdog watchdog("trace ring", 60s);
    Config config = test::traced_config(1);
    config.trace_events_per_worker = 512;
    config.trace_ring_frames = 2;
    JobSystem js{config};
    run_frames(js, 40, 10);
    const std::string json = trace_text(js, "fiberjob_trace_ring.json");
    CHECK(count(json, "\"name\":\"frame 38\"") == 1);
    CHECK(count(json, "\"name\":\"frame 39\"") == 1);
    CHECK(count(json, "\"cat\":\"frame\"") == 2);  // frames 0..37 are left out
    CHECK(count(json, "\"name\":\"job\",\"cat\":\"job\",\"ph\":\"X\"") == 20);
    CHECK(json.find("\"overwritten_events\":0,") == std::string::npos);
    CHECK(json.find("\"first_frame\":38,\"complete\":true") != std::string::npos);
  }

  TEST_CASE("ring mode with buffers too small for N frames marks the trace incomplete") {
    Config config = test::traced_config(1);
    config.trace_events_per_worker = 8;
    config.trace_ring_frames = 3;
    JobSystem js{config};
    run_frames(js, 10, 10);
    const std::string json = trace_text(js, "fiberjob_trace_ring_small.json");
    CHECK(json.find("\"first_frame\":7,\"complete\":false") != std::string::npos);
    CHECK(count(json, "\"name\":\"frame 9\"") == 1);
  }

  TEST_CASE("ring mode with buffers that hold fewer frame marks than N names the first held") {
    // One-event buffers: the non-worker threads' track keeps only the last mark (frame 9) of
    // ten, so the trace holds frame 9 alone, and says so rather than "from frame 0".
    Config config = test::traced_config(1);
    config.trace_events_per_worker = 1;
    config.trace_ring_frames = 3;
    JobSystem js{config};
    run_frames(js, 10, 10);
    std::string json;
    std::string report;
    {
      test::CapturedStderr captured;
      json = trace_text(js, "fiberjob_trace_ring_tiny.json");
      report = captured.text();
    }
    CHECK(count(json, "\"cat\":\"frame\"") == 1);
    CHECK(count(json, "\"name\":\"frame 9\"") == 1);
    CHECK(json.find("\"first_frame\":9,\"complete\":false") != std::string::npos);
    CHECK(report.find("the trace holds 1 of the last 3 frames asked for "
                      "(Config::trace_ring_frames), from frame 9") != std::string::npos);
  }

  TEST_CASE("a trace that holds no frame mark says first_frame null") {
    Config config = test::traced_config(1);
    JobSystem js{config};
    Counter done;
    js.run(done, [] {});
    js.wait(done);
    const std::string json = trace_text(js, "fiberjob_trace_no_frame.json");
    CHECK(json.find("\"first_frame\":null,") != std::string::npos);
  }

  TEST_CASE("write_trace may run while the workers overwrite their rings") {
    test::Watchdog watchdog("trace ring concurrent", 120s);
    Config config = test::traced_config(2);
    config.trace_events_per_worker = 64;  // wraps many times while the traces are written
    config.trace_ring_frames = 1;
    JobSystem js{config};
    std::atomic<bool> stop{false};
    Counter busy;
    for (int w = 0; w < 2; ++w) {
      js.run(busy, [&stop](Context& ctx) {
        while (!stop.load()) {
          Counter parts;
          for (int i = 0; i < 8; ++i) ctx.spawn(parts, [] {});
          this_fiber::wait(parts);
        }
      });
    }
    for (int round = 0; round < 5; ++round) {
      js.trace_frame_mark(static_cast<std::uint64_t>(round));
      const std::string json = trace_text(js, "fiberjob_trace_ring_concurrent.json");
      CHECK(count(json, "{") == count(json, "}"));  // whole events only
      CHECK(count(json, "\"name\":\"frame " + std::to_string(round) + "\"") == 1);
      paired_flows(json, "spawn");  // the arrows that were kept pair up
    }
    stop.store(true);
    js.wait(busy);
  }

  TEST_CASE("without ring mode a full buffer keeps the first events") {
    Config config = test::traced_config(1);
    config.trace_events_per_worker = 512;
    JobSystem js{config};
    run_frames(js, 40, 10);
    const std::string json = trace_text(js, "fiberjob_trace_first.json");
    CHECK(count(json, "\"name\":\"frame 0\"") == 1);
    CHECK(json.find("\"dropped_events\":0,") == std::string::npos);
    CHECK(json.find("\"complete\":false") != std::string::npos);
  }
}
