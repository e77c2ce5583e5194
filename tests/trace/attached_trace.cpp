// Writes a trace in which attached threads' own stacks suspend and resume over several frames,
// for tests/trace/check_attached_trace.py (tests/CMakeLists.txt):
//   attached_trace PATH
// Frames 0-3: the main thread stays attached (the game pattern). Frames 4-7: each frame a new
// thread attaches and detaches again, so the slot has stretches with no thread attached. In
// every frame the attached thread's own stack suspends twice: inside a named job run inline
// there ("inline waiter": that job's segment ends at the suspension and a new one begins at the
// resume), and in its own code's js.wait (no job: no slice).
// A frame mark (JobSystem::trace_frame_mark) right after each attach and right before each
// detach bounds the times at which the slot's track may have slices: marks 2k and 2k+1 are
// attach period k (frames 0-3 share period 0). Exits 2 on a usage error, 1 when the report
// (write_diagnostics) lacks the line of an attached thread's wait.

#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;

/// Waits until JobSystem's report (write_diagnostics) has a line that contains `part`: the
/// attached thread's own stack is then suspended in the wait that line describes. Exits 1 when
/// no such line comes within a minute.
void wait_for_report(const std::string& part) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline) {
    char* text = nullptr;
    std::size_t size = 0;
    std::FILE* out = open_memstream(&text, &size);
    if (out == nullptr) std::abort();
    fiberjob::write_diagnostics(out);
    std::fclose(out);
    const bool found = std::string(text, size).find(part) != std::string::npos;
    std::free(text);
    if (found) return;
    std::this_thread::sleep_for(100us);
  }
  std::fprintf(stderr, "attached_trace: the report never had a line with \"%s\"\n", part.c_str());
  std::exit(1);
}

/// One frame on an attached thread: runs "inline waiter" on its own stack (the only worker is
/// busy with the frame's other job, so the thread's js.wait runs it), which spawns a child
/// (a spawn arrow starts on the attached thread's track) and waits on an Event,
/// then waits for the worker's job. A plain thread ends each wait once the report shows the
/// thread's own stack suspended in it.
void attached_frame(fiberjob::JobSystem& js) {
  FIBERJOB_TRACE_SCOPE("attached frame");
  std::atomic<bool> started{false};
  std::atomic<bool> release{false};
  fiberjob::Counter slow;
  js.run(slow, {.name = "slow on the worker"}, [&started, &release] {
    started.store(true);
    while (!release.load()) std::this_thread::sleep_for(100us);  // the worker stays busy
  });
  while (!started.load()) std::this_thread::yield();
  fiberjob::Event gate;
  std::thread releaser([&] {
    wait_for_report("on its own stack (job 'inline waiter'): waits on Event");
    gate.set();
    wait_for_report("on its own stack: waits on counter");
    release.store(true);
  });
  fiberjob::Counter inline_done;
  fiberjob::Counter children;
  js.run(inline_done, {.name = "inline waiter"}, [&gate, &children](fiberjob::Context& ctx) {
    ctx.spawn(children, {.name = "spawned child"}, [] {});  // a spawn arrow from this stack
    gate.wait();
  });
  js.wait(inline_done);  // runs "inline waiter" here, which suspends this stack
  js.wait(slow);         // the job still runs on the worker: this stack suspends
  js.wait(children);
  releaser.join();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fputs("usage: attached_trace PATH\n", stderr);
    return 2;
  }
  fiberjob::Config config;
  config.worker_count = 1;
  config.attachable_threads = 1;
  config.tracing = true;
  fiberjob::JobSystem js{config};
  std::uint64_t mark = 0;
  {
    std::optional<fiberjob::AttachedWorker> main_thread;
    main_thread.emplace(js);
    js.trace_frame_mark(mark++);
    for (int frame = 0; frame < 4; ++frame) attached_frame(js);
    js.trace_frame_mark(mark++);
    main_thread.reset();
  }
  for (int frame = 4; frame < 8; ++frame) {
    std::this_thread::sleep_for(2ms);  // a stretch with no thread attached
    std::thread thread([&] {
      fiberjob::AttachedWorker attached(js);
      js.trace_frame_mark(mark++);
      attached_frame(js);
      js.trace_frame_mark(mark++);
    });
    thread.join();
  }
  std::this_thread::sleep_for(2ms);
  js.write_trace(argv[1]);
  return 0;
}
