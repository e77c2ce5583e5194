// fiberjob_bench: runs fiberjob and its peers on the same workloads in one process, the systems
// interleaved within each repetition, checks every result, and prints the medians (with the
// minimum and maximum of the repetitions) and each peer's ratio to fiberjob (Markdown), the
// issue's targets marked met/missed, and optionally JSON and a gnuplot data file.
//
//   fiberjob_bench [--smoke] [--reps N] [--json PATH] [--plot-data PATH] [--only NAME[,NAME…]]
//                  [--revision TEXT]
//
// Exit status: 0 when every result checked out (targets are reported, not enforced), 1 when a
// result was wrong or a system failed, 2 for a bad command line.

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "harness.hpp"
#include "machine.hpp"
#include "report.hpp"
#include "rows.hpp"

namespace bench {
namespace {

struct Options {
  bool smoke = false;
  int reps = 0;  // 0: 5 (full) or 1 (smoke)
  std::string json;
  std::string plot_data;
  std::string revision = "unknown";  // of the library measured (scripts/bench.sh: git)
  std::set<std::string> only;
};

void usage(std::FILE* to) {
  std::fputs(
      "usage: fiberjob_bench [--smoke] [--reps N] [--json PATH] [--plot-data PATH]\n"
      "                      [--only NAME[,NAME...]] [--revision TEXT]\n"
      "  --smoke           tiny sizes, 1 repetition, no warm-up (the test-suite run)\n"
      "  --reps N          repetitions per workload (default 5), each running every system\n"
      "                    once; median, min and max reported\n"
      "  --json PATH       also write every sample, the medians and the targets as JSON\n"
      "  --plot-data PATH  write fiberjob's cost relative to each peer (gnuplot data)\n"
      "  --only NAMES      only these workloads and/or systems (comma-separated), e.g.\n"
      "                    --only fib,skynet or --only fiberjob,tbb or --only fib,fiberjob,tbb\n"
      "  --revision TEXT   the fiberjob revision measured, for the report (e.g. a git hash)\n"
      "workloads: fib skynet fib_co skynet_co empty_jobs empty_jobs_plain yield pingpong_1w\n"
      "           pingpong_2w parallel_for many_waiters_1w many_waiters_2w\n"
      "           many_waiters_stop_1w many_waiters_stop_2w mutex_2w event_pingpong_2w\n"
      "           sleep_accuracy_2w\n"
      "           alloc_spawn alloc_wait alloc_yield mem_suspended mem_skynet\n"
      "systems:   fiberjob tbb boost_fiber boost_context std_thread\n",
      to);
}

std::optional<Options> parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) {
        fmt::print(stderr, "fiberjob_bench: {} expects a value\n", arg);
        return std::nullopt;
      }
      return std::string(argv[++i]);
    };
    if (arg == "--smoke") {
      o.smoke = true;
    } else if (arg == "--help" || arg == "-h") {
      usage(stdout);
      std::exit(0);
    } else if (arg == "--reps") {
      auto v = value();
      if (!v) return std::nullopt;
      try {
        o.reps = std::stoi(*v);
      } catch (const std::exception&) {
        o.reps = -1;
      }
      if (o.reps < 1) {
        fmt::print(stderr, "fiberjob_bench: --reps expects a whole number >= 1, got '{}'\n", *v);
        return std::nullopt;
      }
    } else if (arg == "--revision") {
      auto v = value();
      if (!v) return std::nullopt;
      o.revision = *v;
    } else if (arg == "--json" || arg == "--plot-data") {
      auto v = value();
      if (!v) return std::nullopt;
      (arg == "--json" ? o.json : o.plot_data) = *v;
    } else if (arg == "--only") {
      auto v = value();
      if (!v) return std::nullopt;
      std::stringstream names(*v);
      std::string name;
      while (std::getline(names, name, ',')) {
        if (!name.empty()) o.only.insert(name);
      }
    } else {
      fmt::print(stderr, "fiberjob_bench: unknown argument '{}'\n", arg);
      usage(stderr);
      return std::nullopt;
    }
  }
  return o;
}

/// The longest wait, before a run, for the other threads of the process to fall asleep. Idle
/// workers sleep within tens of ms even on a loaded machine (where a woken thread may wait for
/// a CPU a while before it can go back to sleep); a thread that never does is reported.
constexpr double kQuietTimeoutNs = 1e9;

/// One run of `entry`, checked: its value in the workload's metric, and `run.extra` filled.
double run_once(const Workload& def, const Expect& expect, const Entry& entry, const Sizes& sizes,
                Run& run) {
  rusage before{};
  getrusage(RUSAGE_SELF, &before);
  run = entry.fn(sizes);
  rusage after{};
  getrusage(RUSAGE_SELF, &after);
  // Minor page faults of the whole repetition (setup included): the peers' memory churn.
  run.extra["minor_faults"] = static_cast<double>(after.ru_minflt - before.ru_minflt);
  const bool ok = expect.at_least ? run.result >= expect.value : run.result == expect.value;
  if (!ok) {
    throw CheckFailed(fmt::format("WRONG RESULT: {} but expected {}{}", run.result,
                                  expect.at_least ? ">= " : "", expect.value));
  }
  return value_of(def.metric, run);
}

/// Runs one workload on every selected system, interleaved: each round (the warm-ups first)
/// runs every system once, and the order rotates by one system per round (A B C, B C A, C A B…).
/// This VM flips between a fast and a slow mode (about 2x) within minutes; with each system's
/// repetitions in one block, a flip between two blocks went straight into their ratio. Now a
/// slow phase lands on every system of the round alike, and no system always runs first or
/// always right after the same other one. Before each run the harness waits until no other
/// thread of the process runs; after it, the system quiesces (see kExecutionOrder).
void run_workload(const Workload& def, const std::vector<const Entry*>& cells,
                  const Registry& registry, const Sizes& sizes, int warmups, int reps,
                  const Stopwatch& clock, Outcome& out) {
  const Expect expect = def.expect(sizes);
  for (int round = 0; round < warmups + reps; ++round) {
    for (std::size_t k = 0; k < cells.size(); ++k) {
      const Entry& e = *cells[(k + static_cast<std::size_t>(round)) % cells.size()];
      const Key key{e.workload, e.system};
      if (out.failed_cells.count(key) != 0) continue;
      const SystemInfo& system =
          *std::find_if(registry.systems().begin(), registry.systems().end(),
                        [&](const SystemInfo& info) { return info.name == e.system; });
      std::string busy;
      const double quiet_ns = wait_for_quiet_threads(kQuietTimeoutNs, &busy);
      if (quiet_ns < 0) {
        ++out.unquiet_runs;
        fmt::print(stderr, "  (thread {} still runs after {:.0f} ms; {} on {} starts anyway)\n",
                   busy, kQuietTimeoutNs / 1e6, e.workload, e.system);
      }
      const double started_s = clock.ns() / 1e9;
      const bool counted = round >= warmups;
      // A failure (wrong result, a child that cannot start) fails this cell and the exit
      // status; the other cells still run, and every system's teardown still happens.
      try {
        Run run;
        const double v = run_once(def, expect, e, sizes, run);
        run.extra["quiet_wait_ms"] = quiet_ns < 0 ? -1 : quiet_ns / 1e6;
        fmt::print(stderr, "  {:<13} {:<16} {:>12} {:<8} (result {}{})\n", system.name, e.workload,
                   format_value(v), unit_of(def.metric), run.result, counted ? "" : ", warm-up");
        if (counted) {
          Result& result = out.results[key];
          result.samples.push_back(v);
          result.started_s.push_back(started_s);
          result.positions.push_back(static_cast<int>(k));
          for (const auto& [name, x] : run.extra) result.extras[name].push_back(x);
        }
      } catch (const std::exception& error) {
        const std::string what = fmt::format("{} on {}: {}", e.workload, e.system, error.what());
        fmt::print(stderr, "  FAILED {}\n", what);
        out.failures.push_back(what);
        out.failed_cells.insert(key);
        out.results.erase(key);
      }
      if (system.quiesce) system.quiesce();
    }
  }
  for (const Entry* e : cells) {
    const auto it = out.results.find({e->workload, e->system});
    if (it != out.results.end()) it->second.summarize();
  }
}

/// False (with a message) when `only` names a workload or system that does not exist.
bool known_names(const std::set<std::string>& only, const std::vector<Workload>& defs,
                 const Registry& registry) {
  std::set<std::string> known;
  for (const Workload& w : defs) known.insert(w.name);
  for (const SystemInfo& s : registry.systems()) known.insert(s.name);
  for (const std::string& name : only) {
    if (known.count(name) == 0) {
      fmt::print(stderr, "fiberjob_bench: --only: no workload or system named '{}'\n", name);
      return false;
    }
  }
  return true;
}

/// Whether --only selects `e`: the workloads it names (all if it names none) on the systems it
/// names (all if it names none).
bool is_selected(const std::set<std::string>& only, const std::vector<Workload>& defs,
                 const Registry& registry, const Entry& e) {
  if (only.empty()) return true;
  bool any_workload = false;
  bool any_system = false;
  for (const Workload& w : defs) any_workload |= only.count(w.name) != 0;
  for (const SystemInfo& s : registry.systems()) any_system |= only.count(s.name) != 0;
  const bool w_ok = !any_workload || only.count(e.workload) != 0;
  const bool s_ok = !any_system || only.count(e.system) != 0;
  return w_ok && s_ok;
}

/// What the report says about the run: its settings and the load while it ran.
RunInfo run_info(const Options& options, int reps, int warmups, const Stopwatch& wall,
                 const CpuTimes& cpu_start, double round_trip_ns, const Outcome& outcome) {
  const CpuTimes cpu_end = CpuTimes::now();
  RunInfo info;
  info.smoke = options.smoke;
  info.reps = reps;
  info.warmups = warmups;
  info.revision = options.revision;
  info.wall_s = wall.ns() / 1e9;
  info.other_s = std::max(0.0, (cpu_end.machine_busy_s - cpu_start.machine_busy_s) -
                                   (cpu_end.self_s - cpu_start.self_s));
  info.steal_s = cpu_end.steal_s - cpu_start.steal_s;
  info.round_trip_ns = round_trip_ns;
  info.interference = fmt::format(
      "other processes used {:.1f} CPU-seconds during the {:.0f} s run ({:.2f} CPUs on average); "
      "hypervisor steal {:.1f} s; core-to-core round trip before the run {:.0f} ns (-1: not "
      "measured); {} run(s) started with another thread of ours still running after {:.0f} ms",
      info.other_s, info.wall_s, info.other_s / info.wall_s, info.steal_s, info.round_trip_ns,
      outcome.unquiet_runs, kQuietTimeoutNs / 1e6);
  return info;
}

int run_all(const Options& options) {
  const Sizes sizes = options.smoke ? Sizes::smoke() : Sizes::full();
  const int reps = options.reps > 0 ? options.reps : (options.smoke ? 1 : 5);
  const int warmups = options.smoke ? 0 : 1;
  const std::vector<Workload> defs = workloads(sizes);

  Registry registry;
  register_context_switch(registry);
  register_std_thread(registry);
  register_fiberjob(registry);
  register_timer_workloads(registry);
  register_tbb(registry);
  register_boost_fiber(registry);  // last: its pool polls once built (see its file)
  register_memory(registry);       // 7: child processes, for fiberjob, tbb and boost_fiber

  if (!known_names(options.only, defs, registry)) return 2;
  auto selected = [&](const Entry& e) { return is_selected(options.only, defs, registry, e); };

  Outcome outcome;
  const Calibration calibration = options.smoke ? Calibration{} : calibrate_core_to_core();
  const CpuTimes cpu_start = CpuTimes::now();
  const Stopwatch wall;
  fmt::print(stderr,
             "fiberjob_bench: {} sizes, {} repetition(s) after {} warm-up, 2 workers, systems "
             "interleaved within each repetition\n",
             options.smoke ? "smoke" : "full", reps, warmups);
  for (const std::string& name : kExecutionOrder) {
    const auto def =
        std::find_if(defs.begin(), defs.end(), [&](const Workload& w) { return w.name == name; });
    if (def == defs.end()) continue;
    std::vector<const Entry*> cells;  // in the registry's system order: the first round's order
    for (const SystemInfo& system : registry.systems()) {
      for (const Entry& e : registry.entries()) {
        if (e.system == system.name && e.workload == name && selected(e)) cells.push_back(&e);
      }
    }
    if (!cells.empty()) run_workload(*def, cells, registry, sizes, warmups, reps, wall, outcome);
  }
  // Every system lived through every workload (see kExecutionOrder); now their threads stop.
  for (const SystemInfo& system : registry.systems()) {
    if (system.teardown) system.teardown();
  }
  const RunInfo info =
      run_info(options, reps, warmups, wall, cpu_start, calibration.round_trip_ns, outcome);
  if (!report(defs, registry, outcome, info, options.json, options.plot_data)) return 1;
  if (!outcome.failures.empty()) {
    fmt::print(stderr, "fiberjob_bench: {} cell(s) FAILED, listed at the end of the table\n",
               outcome.failures.size());
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  // Hidden: a child of the memory workloads (7) measures once and reports on stdout.
  if (argc > 1 && std::string(argv[1]) == "--memory-child") {
    return bench::memory_child_main(argc, argv);
  }
  const std::optional<bench::Options> options = bench::parse(argc, argv);
  if (!options) return 2;
  try {
    return bench::run_all(*options);
  } catch (const bench::CheckFailed& e) {
    std::fprintf(stderr, "fiberjob_bench: WRONG RESULT: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fiberjob_bench: error: %s\n", e.what());
    return 1;
  }
}
