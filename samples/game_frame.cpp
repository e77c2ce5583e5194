// game_frame: a game loop on real Dragon Age: Origins maps (Moving AI Lab benchmarks).
//
//   per frame (fixed 60 Hz step):
//     main ── begin_frame (frame allocator) ── release frame gate ──▶ N AI coroutines
//       AI (one long-lived coroutine job per agent): co_await the frame gate; need a path?
//          spawn an A* job and co_await its counter next frame; else steer along the path
//       frame job: co_await ai_done ─▶ spatial grid ─▶ co_await parallel_for(movement +
//          local avoidance) ─▶ render prep job (after movement): sets snapshot_ready ─▶ done
//       presenter (one long-lived coroutine job): co_await snapshot_ready (Event) ─▶
//          co_await resume_on(main) ─▶ submit to the graphics context ─▶ resume_on_any
//     main (attached: AttachedWorker) ◀── js.wait(frame_done), running jobs and the hop
//        to the main thread meanwhile
//
// Prints one line per simulated second and a summary; --check verifies every path against a
// single-threaded Dijkstra (and, on arena.map, the 130 published scenario lengths); --trace
// writes a Chrome Trace Event timeline for Perfetto; --rss-every N prints the resident set size
// and that window's frame times every N frames (the soak, scripts/soak.sh); --serial runs the
// same frames on the main thread without jobs (the baseline of scripts/bench-game.sh).

#include <fmt/core.h>
#include <fiberjob/fiberjob.hpp>
#include <fiberjob/frame_allocator.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "game/alloc_counter.hpp"
#include "game/checks.hpp"
#include "game/options.hpp"
#include "game/rss.hpp"
#include "game/world.hpp"

namespace {

// Nearest-rank percentile of sorted values.
double percentile_of_sorted(std::span<const double> sorted, double p) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * sorted.size()));
  return sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return percentile_of_sorted(values, p);
}

// --rss-every: the resident set size now and the frame times of the window.size() frames that
// end with frame `frames_done` - 1, sorted in `window` (sized before the frame loop: no
// allocation here).
void print_rss_window(std::uint32_t frames_done, const std::vector<double>& frame_ms,
                      std::vector<double>& window) {
  const auto end = frame_ms.begin() + frames_done;
  std::copy(end - static_cast<std::ptrdiff_t>(window.size()), end, window.begin());
  std::sort(window.begin(), window.end());
  fmt::print("rss frame {:7} kib {:8}  frame ms p50 {:6.3f} p99 {:6.3f} max {:6.3f}\n", frames_done,
             game::resident_kib(), percentile_of_sorted(window, 50),
             percentile_of_sorted(window, 99), window.back());
}

// The job system and the frame allocator's settings for `options`. Default Config: the AI
// coroutines wait between frames with co_await, which suspends the coroutine and holds no
// fiber, so the pool need not grow with the number of agents. --serial runs no job in the
// frames: its one worker exists because the frame allocator is built on a job system (and for
// --check), and the main thread takes frame memory from the shared arena.
fiberjob::Config job_config(const game::Options& options) {
  fiberjob::Config config;
  if (options.workers != 0) config.worker_count = options.workers;
  if (options.serial) config.worker_count = 1;
  // The main thread attaches (AttachedWorker): the graphics context is its own, so the frame's
  // submission hops there (resume_on), and its waits for the frame run jobs meanwhile.
  if (!options.serial) config.attachable_threads = 1;
  config.tracing = !options.trace_path.empty();
  // The default run (2,000 agents, 300 frames) records about 615,000 events, most of them the
  // AI coroutines' resumptions: 2^20 events of 32 bytes (32 MiB) per worker hold them all even
  // if one worker ran everything. write_trace says on stderr if events were dropped.
  if (config.tracing) config.trace_events_per_worker = std::size_t{1} << 20;
  return config;
}

fiberjob::FrameAllocatorConfig memory_config() {
  fiberjob::FrameAllocatorConfig memory;
  memory.bytes_per_worker = std::size_t{16} << 20;  // A* open lists on big maps
  // The main thread (serial: every frame; attached: the A* jobs it runs while it waits) takes
  // frame memory from the shared arena.
  memory.shared_bytes = memory.bytes_per_worker;
  return memory;
}

// What the frame loop measured.
struct FrameTimes {
  std::vector<double> frame_ms;  // one per frame
  double wall_s = 0;
  std::uint64_t allocations_before = 0;              // global-allocator calls before frame 0
  std::uint64_t allocations_after_first_second = 0;  // ... after frame 59
  std::uint64_t allocations_end = 0;                 // ... after the last frame
};

// Prints the one-second line that ends with frame `frame` (p50 and max of its 60 frames).
void print_second(std::uint32_t frame, const std::vector<double>& frame_ms,
                  const game::World& world) {
  std::array<double, 60> second;  // no allocation inside the frame loop
  std::copy(frame_ms.begin() + frame + 1 - 60, frame_ms.begin() + frame + 1, second.begin());
  std::sort(second.begin(), second.end());
  fmt::print("game t={:3}s  frame ms p50 {:6.3f} max {:6.3f}  paths so far {:6}\n",
             (frame + 1) / 60, second[29], second[59], world.counters().paths);
}

// Runs the frames: AI, movement, render prep, all jobs joined by counters (or all inline:
// --serial), printing a line per second of game time.
FrameTimes run_frames(const game::Options& options, fiberjob::JobSystem& js, game::World& world) {
  FrameTimes times;
  // Sized and written (touched) now: filling them adds no resident memory during the frames.
  times.frame_ms.assign(options.frames, 0.0);
  std::vector<double> rss_window(options.rss_every);
  times.allocations_before = game::global_allocations();
  times.allocations_after_first_second = times.allocations_before;
  const auto start = std::chrono::steady_clock::now();
  for (std::uint32_t frame = 0; frame < options.frames; ++frame) {
    const auto begin = std::chrono::steady_clock::now();
    if (options.replace_every != 0 && frame != 0 && frame % options.replace_every == 0) {
      // A new behaviour for one agent: its old AI coroutine is cancelled, a new one goes on.
      world.replace_behaviour(frame / options.replace_every % options.agents, frame);
    }
    if (options.serial) {
      world.run_frame_serial();
    } else {
      js.trace_frame_mark(frame);  // "frame N" across the trace's tracks (--trace)
      FIBERJOB_TRACE_SCOPE("frame (main thread waits)");
      world.run_frame(frame);
    }
    times.frame_ms[frame] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin).count();
    if (options.rss_every != 0 && (frame + 1) % options.rss_every == 0) {
      print_rss_window(frame + 1, times.frame_ms, rss_window);
    }
    if ((frame + 1) % 60 == 0) {
      print_second(frame, times.frame_ms, world);
      if (frame + 1 == 60) times.allocations_after_first_second = game::global_allocations();
    }
  }
  times.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  times.allocations_end = game::global_allocations();
  return times;
}

void print_summary(const game::Options& options, const fiberjob::JobSystem& js,
                   const fiberjob::Config& config, const game::World& world,
                   const FrameTimes& times) {
  const fiberjob::Stats stats = js.stats();
  const game::FrameCounters counters = world.counters();
  fmt::print("\nsummary ({}, {} frames, {:.2f} s wall)\n",
             options.serial ? std::string("serial: no jobs")
                            : fmt::format("{} workers", js.worker_count()),
             options.frames, times.wall_s);
  const std::vector<double>& frame_ms = times.frame_ms;
  fmt::print("  frame time ms   p50 {:.3f}  p95 {:.3f}  p99 {:.3f}  max {:.3f}\n",
             percentile(frame_ms, 50), percentile(frame_ms, 95), percentile(frame_ms, 99),
             percentile(frame_ms, 100));
  fmt::print("  jobs per frame  {:.1f} ({})\n",
             static_cast<double>(stats.jobs_run) / options.frames,
             options.serial ? std::string("the serial build runs every frame on the main thread")
                            : fmt::format("jobs started: A* searches, movement batches, the frame "
                                          "and render jobs; the {} agents' AI steps resume their "
                                          "coroutines and are not counted",
                                          options.agents));
  fmt::print("  paths per second {:.0f} ({} searches, {} without a path)\n",
             static_cast<double>(counters.paths) / times.wall_s, counters.paths,
             counters.path_failures);
  fmt::print("  fiber switches {}  steals {}  peak fibers in use {} of {}\n", stats.fiber_switches,
             stats.steals, stats.fibers_in_use_high_water, config.fiber_count);
  const std::uint32_t steady_frames = options.frames > 60 ? options.frames - 60 : 0;
  fmt::print("  global-allocator calls per frame {:.2f} (after the first second: {})\n",
             static_cast<double>(times.allocations_end - times.allocations_before) / options.frames,
             steady_frames == 0
                 ? std::string("n/a")
                 : fmt::format("{:.2f}", static_cast<double>(times.allocations_end -
                                                             times.allocations_after_first_second) /
                                             steady_frames));
  fmt::print("  frames submitted to the graphics context {} (from another thread than main: {})\n",
             world.graphics().frames(), world.graphics().wrong_thread());
  fmt::print("  snapshot checksum {:016x}\n", world.snapshot_checksum());
}

int run(const game::Options& options) {
  // 1. The map.
  const game::GridMap map = game::GridMap::load(options.map_path);
  fmt::print("map {}: {} x {}, {} passable cells; {} agents, {} frames\n",
             std::filesystem::path(options.map_path).filename().string(), map.width(), map.height(),
             map.passable_count(), options.agents, options.frames);
  fmt::print(
      "one line per second of game time (60 frames at 60 Hz): frame ms = wall-clock time "
      "to compute a frame\n");

  // 2. The job system and the frame allocator.
  const fiberjob::Config config = job_config(options);
  fiberjob::JobSystem js{config};
  fiberjob::FrameAllocator memory{js, memory_config()};
  std::optional<fiberjob::AttachedWorker> main_thread;  // detaches before js goes
  if (!options.serial) main_thread.emplace(js);

  // 3. The world, and its AI coroutines and presenter waiting for the first frame.
  std::optional<fiberjob::AttachedThread> main;
  if (main_thread) main = *main_thread;
  game::World world(map, js, memory, options.agents, options.seed, options.check, main);
  if (!options.serial) world.start(options.replace_every != 0 || options.stop_tokens);

  // 4. The frames, then 5. the summary.
  const FrameTimes times = run_frames(options, js, world);
  if (!options.serial) world.stop(options.frames);
  print_summary(options, js, config, world, times);

  int status = 0;
  if (options.replace_every != 0) {
    const game::FrameCounters counters = world.counters();
    fmt::print("  behaviours replaced {}, old AI coroutines cancelled {}\n", counters.ai_replaced,
               counters.ai_cancelled);
    if (counters.ai_cancelled != counters.ai_replaced) {
      fmt::print("FAILED: every replaced behaviour's AI coroutine should have been cancelled\n");
      status = 1;
    }
  }
  if (world.graphics().frames() != options.frames || world.graphics().wrong_thread() != 0) {
    fmt::print("FAILED: every frame should have been submitted once, on the main thread\n");
    status = 1;
  }
  if (options.check) {
    status = game::check_paths(map, world.take_path_records()) ? status : 1;
    if (std::filesystem::path(options.map_path).filename() == "arena.map") {
      status = game::check_scenarios(js, map, options.map_path + ".scen") ? status : 1;
    }
  }
  if (!options.trace_path.empty()) {
    js.write_trace(options.trace_path);
    fmt::print("trace written to {}\n", options.trace_path);
  }
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  std::string error;
  const std::string default_map = std::string(FIBERJOB_SAMPLE_DATA_DIR) + "/den520d.map";
  const auto options = game::parse_options(argc, argv, default_map, error);
  if (!options) {
    if (error.empty()) {
      std::fputs(game::usage().c_str(), stdout);
      return 0;
    }
    std::fprintf(stderr, "game_frame: %s\n%s", error.c_str(), game::usage().c_str());
    return 2;
  }
  try {
    return run(*options);
  } catch (const game::MapError& e) {
    std::fprintf(stderr, "game_frame: cannot use the map: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "game_frame: %s\n", e.what());
  }
  return 1;
}
