// Writes a trace whose buffers overflowed, for scripts/check_trace.py (tests/CMakeLists.txt):
//   overflowed_trace drop PATH   buffers of 1024 events fill up and later events are dropped
//   overflowed_trace ring PATH   ring mode, written while the workers keep recording and
//                                overwriting (slices still open when the snapshot is taken)
// The main thread runs jobs that each spawn children and wait for them on two workers, so the
// trace has spawn and wake arrows, some of whose slices are lost. Exits 1 if the trace did not
// overflow or kept no arrow (then the check would not test what it is meant to), 2 on a usage
// error.

#include <fiberjob/fiberjob.hpp>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

namespace {

/// Runs `count` jobs that each spawn 64 children and wait for them; does not wait for them.
void spawn_parents(fiberjob::JobSystem& js, fiberjob::Counter& done, int count) {
  for (int i = 0; i < count; ++i) {
    js.run(done, [](fiberjob::Context& ctx) {
      fiberjob::Counter parts;
      for (int child = 0; child < 64; ++child) ctx.spawn(parts, [] {});
      fiberjob::this_fiber::wait(parts);
    });
  }
}

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

/// True when the trace at `path` lost events (`lost_field` is not 0) and kept an arrow.
bool overflowed_with_arrows(const std::string& path, const std::string& lost_field) {
  const std::string json = file_text(path);
  const bool lost = json.find("\"" + lost_field + "\":0,") == std::string::npos;
  const bool arrows = json.find("\"ph\":\"s\"") != std::string::npos;
  if (!lost) std::fprintf(stderr, "overflowed_trace: no %s\n", lost_field.c_str());
  if (!arrows) std::fputs("overflowed_trace: the trace kept no arrow\n", stderr);
  return lost && arrows;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc == 3 ? argv[1] : "";
  if (mode != "drop" && mode != "ring") {
    std::fputs("usage: overflowed_trace drop|ring PATH\n", stderr);
    return 2;
  }
  const std::string path = argv[2];
  fiberjob::Config config;
  config.worker_count = 2;
  config.tracing = true;
  config.trace_events_per_worker = 1024;
  if (mode == "ring") config.trace_ring_frames = 2;
  fiberjob::JobSystem js{config};
  for (int frame = 0; frame < 40; ++frame) {
    js.trace_frame_mark(static_cast<std::uint64_t>(frame));
    fiberjob::Counter done;
    spawn_parents(js, done, 4);
    // Ring mode: a snapshot while the jobs run (the last one stays for the check).
    if (mode == "ring" && frame >= 30) js.write_trace(path);
    js.wait(done);
  }
  if (mode == "drop") js.write_trace(path);
  return overflowed_with_arrows(path, mode == "drop" ? "dropped_events" : "overwritten_events") ? 0
                                                                                                : 1;
}
