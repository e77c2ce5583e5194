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

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// One cell (workload, system) over its counted repetitions, in the order they ran.
struct Result {
  std::vector<double> samples;
  std::vector<double> started_s;  // when each counted repetition started, s since the first run
  std::vector<int> positions;     // the system's place in its round (0: ran first)
  double median = 0;
  double min = 0;
  double max = 0;
  std::map<std::string, double> extra;                // median over the repetitions
  std::map<std::string, std::vector<double>> extras;  // every repetition's, until summarize()
  void summarize() {
    if (samples.empty()) return;
    median = bench::median(samples);
    const auto [lo, hi] = std::minmax_element(samples.begin(), samples.end());
    min = *lo;
    max = *hi;
    for (auto& [k, xs] : extras) extra[k] = bench::median(xs);
    extras.clear();
  }
};

std::string format_value(double v) {
  if (v == 0) return "0";
  const double a = std::fabs(v);
  if (a >= 1000) return fmt::format("{:.0f}", v);
  if (a >= 100) return fmt::format("{:.1f}", v);
  if (a >= 10) return fmt::format("{:.2f}", v);
  if (a >= 0.01) return fmt::format("{:.3f}", v);
  return fmt::format("{:.2g}", v);
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<int>(c));
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  return fmt::format("{}", v);
}

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
      "           pingpong_2w parallel_for many_waiters_1w many_waiters_2w mutex_2w\n"
      "           event_pingpong_2w sleep_accuracy_2w\n"
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

using Key = std::pair<std::string, std::string>;  // workload, system

std::optional<double> ratio(const std::map<Key, Result>& results, const std::string& workload,
                            const std::string& peer) {
  const auto f = results.find({workload, "fiberjob"});
  const auto p = results.find({workload, peer});
  if (f == results.end() || p == results.end() || p->second.median == 0) return std::nullopt;
  return f->second.median / p->second.median;
}

/// What the runs of every workload left behind.
struct Outcome {
  std::map<Key, Result> results;
  std::vector<std::string> failures;  // "workload on system: what went wrong"
  std::set<Key> failed_cells;
  int unquiet_runs = 0;  // runs that started while another thread of ours still ran
};

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

/// The median over the repetitions of fiberjob's value ÷ the peer's in the same repetition: the
/// two ran a few seconds apart at most, so a slow phase of the machine mostly cancels out.
std::optional<double> paired_ratio(const std::map<Key, Result>& results,
                                   const std::string& workload, const std::string& peer) {
  const auto f = results.find({workload, "fiberjob"});
  const auto p = results.find({workload, peer});
  if (f == results.end() || p == results.end()) return std::nullopt;
  const std::vector<double>& a = f->second.samples;
  const std::vector<double>& b = p->second.samples;
  if (a.size() != b.size() || a.empty()) return std::nullopt;
  std::vector<double> ratios;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (b[i] == 0) return std::nullopt;
    ratios.push_back(a[i] / b[i]);
  }
  return median(ratios);
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

  std::set<std::string> known;
  for (const Workload& w : defs) known.insert(w.name);
  for (const SystemInfo& s : registry.systems()) known.insert(s.name);
  for (const std::string& name : options.only) {
    if (known.count(name) == 0) {
      fmt::print(stderr, "fiberjob_bench: --only: no workload or system named '{}'\n", name);
      return 2;
    }
  }
  auto selected = [&](const Entry& e) {
    if (options.only.empty()) return true;
    bool any_workload = false;
    bool any_system = false;
    for (const Workload& w : defs) any_workload |= options.only.count(w.name) != 0;
    for (const SystemInfo& s : registry.systems()) any_system |= options.only.count(s.name) != 0;
    const bool w_ok = !any_workload || options.only.count(e.workload) != 0;
    const bool s_ok = !any_system || options.only.count(e.system) != 0;
    return w_ok && s_ok;
  };

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
  std::map<Key, Result>& results = outcome.results;
  const std::vector<std::string>& failures = outcome.failures;
  const std::set<Key>& failed_cells = outcome.failed_cells;

  const CpuTimes cpu_end = CpuTimes::now();
  const double wall_s = wall.ns() / 1e9;
  const double other_s = std::max(0.0, (cpu_end.machine_busy_s - cpu_start.machine_busy_s) -
                                           (cpu_end.self_s - cpu_start.self_s));
  const double steal_s = cpu_end.steal_s - cpu_start.steal_s;
  const std::string interference = fmt::format(
      "other processes used {:.1f} CPU-seconds during the {:.0f} s run ({:.2f} CPUs on average); "
      "hypervisor steal {:.1f} s; core-to-core round trip before the run {:.0f} ns (-1: not "
      "measured); {} run(s) started with another thread of ours still running after {:.0f} ms",
      other_s, wall_s, other_s / wall_s, steal_s, calibration.round_trip_ns, outcome.unquiet_runs,
      kQuietTimeoutNs / 1e6);

  // ---- The table ------------------------------------------------------------------------------
  auto label = [&](const std::string& name) {
    for (const SystemInfo& s : registry.systems()) {
      if (s.name == name) return s.label;
    }
    return name;
  };
  std::string table = "| workload | unit | fiberjob |";
  std::string rule = "| --- | --- | ---: |";
  for (const std::string& peer : kPeers) {
    table += fmt::format(" {} | ÷ |", label(peer));
    rule += " ---: | ---: |";
  }
  table += "\n" + rule + "\n";
  for (const Workload& w : defs) {
    bool any = false;
    for (const auto& [key, r] : results) any |= key.first == w.name;
    if (!any) continue;
    auto cell = [&](const std::string& system) -> std::string {
      const auto it = results.find({w.name, system});
      if (it == results.end()) return "—";
      Result& r = it->second;
      // "median (min–max)": the range over the counted repetitions (none when they all agree).
      std::string text = format_value(r.median);
      std::string inside;
      if (r.min != r.max) inside = format_value(r.min) + "–" + format_value(r.max);
      if (w.metric == Metric::CallsPerOp) {
        inside += fmt::format("{}new {}, malloc {}", inside.empty() ? "" : "; ",
                              format_value(r.extra["operator_new_per_op"]),
                              format_value(r.extra["malloc_per_op"]));
      }
      return inside.empty() ? text : text + " (" + inside + ")";
    };
    table += fmt::format("| {} | {} | {} |", w.title, unit_of(w.metric), cell("fiberjob"));
    for (const std::string& peer : kPeers) {
      const std::optional<double> r =
          w.metric == Metric::CallsPerOp ? std::nullopt : ratio(results, w.name, peer);
      table += fmt::format(" {} | {} |", cell(peer), r ? fmt::format("{:.2f}", *r) : "—");
    }
    table += "\n";
  }

  // ---- Spread: max / min of the counted repetitions, per cell -------------------------------
  std::string spread = "| spread (max ÷ min of the repetitions) | fiberjob |";
  std::string spread_rule = "| --- | ---: |";
  for (const std::string& peer : kPeers) {
    spread += fmt::format(" {} |", label(peer));
    spread_rule += " ---: |";
  }
  spread += "\n" + spread_rule + "\n";
  for (const Workload& w : defs) {
    if (w.metric == Metric::CallsPerOp || results.count({w.name, "fiberjob"}) == 0) continue;
    spread += fmt::format("| {} |", w.name);
    for (const std::string& system :
         {std::string("fiberjob"), kPeers[0], kPeers[1], kPeers[2], kPeers[3]}) {
      const auto it = results.find({w.name, system});
      if (it == results.end()) {
        spread += " — |";
        continue;
      }
      const auto [lo, hi] =
          std::minmax_element(it->second.samples.begin(), it->second.samples.end());
      spread += *lo > 0 ? fmt::format(" {:.2f} |", *hi / *lo) : " — |";
    }
    spread += "\n";
  }

  // ---- Targets ----------------------------------------------------------------------------------
  struct Verdict {
    const Target* target;
    std::optional<double> measured;
    std::string status;
  };
  std::vector<Verdict> verdicts;
  for (const Target& t : kTargets) {
    const bool failed = failed_cells.count({t.workload, "fiberjob"}) != 0 ||
                        (!t.peer.empty() && failed_cells.count({t.workload, t.peer}) != 0);
    Verdict v{&t, std::nullopt, failed ? "failed" : "not run"};
    if (!t.baseline.empty()) {
      const auto it = results.find({t.workload, "fiberjob"});
      const auto base = results.find({t.baseline, "fiberjob"});
      if (failed_cells.count({t.baseline, "fiberjob"}) != 0) v.status = "failed";
      if (it != results.end() && base != results.end() && it->second.median > 0) {
        v.measured = base->second.median / it->second.median;
      }
    } else if (t.peer.empty()) {
      const auto it = results.find({t.workload, "fiberjob"});
      if (it != results.end()) v.measured = it->second.median;
    } else {
      v.measured = ratio(results, t.workload, t.peer);
    }
    if (v.measured) {
      bool met = false;
      switch (t.kind) {
        case Target::Kind::AtMost:
          met = *v.measured <= t.bound;
          break;
        case Target::Kind::AtLeast:
          met = *v.measured >= t.bound;
          break;
        case Target::Kind::Zero:
          met = *v.measured == 0;
          break;
      }
      v.status = met ? "met" : "missed";
    }
    verdicts.push_back(v);
  }
  std::string targets =
      "| target (the issue's) | fiberjob ÷ peer, or fiberjob's value | |\n"
      "| --- | ---: | --- |\n";
  for (const Verdict& v : verdicts) {
    targets += fmt::format("| {} | {} | {} |\n", v.target->text,
                           v.measured ? fmt::format("{:.3g}", *v.measured) : "—", v.status);
  }

  Machine machine;
  fmt::print(
      "## fiberjob_bench ({} sizes; median (min–max) of {} after {} warm-up; 2 workers; systems "
      "interleaved)\n\n",
      options.smoke ? "smoke" : "full", reps, warmups);
  fmt::print(
      "Each cell is the median of the repetitions, with their minimum and maximum in "
      "parentheses. Every repetition ran each system once, in an order rotating by one system "
      "per repetition. Ratio columns (÷) are fiberjob ÷ peer of the medians: below 1 means "
      "fiberjob takes less time (7: less memory); for M jobs/s above 1 means fiberjob is "
      "faster. Targets are judged on the medians.\n\n");
  fmt::print("{}\n{}\n", table, spread);
  if (options.smoke) fmt::print("(smoke sizes: the targets are not meaningful)\n\n");
  fmt::print("{}\n", targets);
  fmt::print("| system | version | setup | idle policy |\n| --- | --- | --- | --- |\n");
  for (const SystemInfo& s : registry.systems()) {
    fmt::print("| {} | {} | {} | {} |\n", s.label, s.version, s.setup, s.idle_policy);
  }
  fmt::print("\nMachine: {}, {} CPUs, {} RAM, {}; {}; {}\n", machine.cpu, machine.cpus,
             machine.memory, machine.kernel, machine.compiler, machine.date);
  fmt::print("fiberjob revision: {}\nLoad: {}\n", options.revision, interference);
  if (!failures.empty()) {
    fmt::print("\nFAILED ({}; their cells are missing above):\n", failures.size());
    for (const std::string& f : failures) fmt::print("- {}\n", f);
  }

  // ---- JSON -------------------------------------------------------------------------------------
  if (!options.json.empty()) {
    std::ofstream out(options.json);
    out << "{\n";
    out << fmt::format("  \"generated\": \"{}\",\n", machine.date);
    out << fmt::format("  \"revision\": \"{}\",\n", json_escape(options.revision));
    out << fmt::format("  \"mode\": \"{}\",\n  \"repetitions\": {},\n  \"warmups\": {},\n",
                       options.smoke ? "smoke" : "full", reps, warmups);
    out << fmt::format(
        "  \"machine\": {{\"cpu\": \"{}\", \"cpus\": {}, \"memory\": \"{}\", \"kernel\": "
        "\"{}\", \"compiler\": \"{}\"}},\n",
        json_escape(machine.cpu), machine.cpus, json_escape(machine.memory),
        json_escape(machine.kernel), json_escape(machine.compiler));
    out << fmt::format(
        "  \"load\": {{\"wall_seconds\": {}, \"other_processes_cpu_seconds\": {}, "
        "\"steal_seconds\": {}, \"core_to_core_round_trip_ns\": {}, \"summary\": \"{}\"}},\n",
        json_number(wall_s), json_number(other_s), json_number(steal_s),
        json_number(calibration.round_trip_ns), json_escape(interference));
    out << "  \"ratio\": \"fiberjob median / system median, of the metric in 'unit'\",\n";
    out << "  \"ratio_paired\": \"median over the repetitions of fiberjob's value / the system's "
           "value in the same repetition\",\n";
    out << "  \"order\": \"for each workload, each repetition (warm-ups first) runs every "
           "selected system once, in an order rotating by one system per repetition; "
           "'positions' gives each counted sample's place in its repetition, 'started_s' its "
           "start in seconds since the first run\",\n";
    out << "  \"systems\": [\n";
    for (std::size_t i = 0; i < registry.systems().size(); ++i) {
      const SystemInfo& s = registry.systems()[i];
      out << fmt::format(
          "    {{\"name\": \"{}\", \"label\": \"{}\", \"version\": \"{}\", \"setup\": \"{}\", "
          "\"idle_policy\": \"{}\"}}{}\n",
          s.name, json_escape(s.label), json_escape(s.version), json_escape(s.setup),
          json_escape(s.idle_policy), i + 1 < registry.systems().size() ? "," : "");
    }
    out << "  ],\n  \"results\": [\n";
    std::size_t n = 0;
    for (const Workload& w : defs) {
      for (const SystemInfo& s : registry.systems()) {
        const auto it = results.find({w.name, s.name});
        if (it == results.end()) continue;
        const Result& r = it->second;
        auto list = [](const auto& xs) {
          std::string text;
          for (const auto x : xs) {
            text += (text.empty() ? "" : ", ") + json_number(static_cast<double>(x));
          }
          return text;
        };
        std::string extra;
        for (const auto& [k, x] : r.extra) {
          extra += fmt::format("{}\"{}\": {}", extra.empty() ? "" : ", ", k, json_number(x));
        }
        const bool no_ratio = s.name == "fiberjob" || w.metric == Metric::CallsPerOp;
        const std::optional<double> q = no_ratio ? std::nullopt : ratio(results, w.name, s.name);
        const std::optional<double> qp =
            no_ratio ? std::nullopt : paired_ratio(results, w.name, s.name);
        out << fmt::format(
            "{}    {{\"workload\": \"{}\", \"title\": \"{}\", \"system\": \"{}\", \"unit\": "
            "\"{}\", \"median\": {}, \"min\": {}, \"max\": {}, \"samples\": [{}], "
            "\"started_s\": [{}], \"positions\": [{}], \"ratio\": {}, \"ratio_paired\": {}, "
            "\"extra\": {{{}}}}}",
            n++ == 0 ? "" : ",\n", w.name, json_escape(w.title), s.name, unit_of(w.metric),
            json_number(r.median), json_number(r.min), json_number(r.max), list(r.samples),
            list(r.started_s), list(r.positions), q ? json_number(*q) : "null",
            qp ? json_number(*qp) : "null", extra);
      }
    }
    out << "\n  ],\n  \"failures\": [";
    for (std::size_t i = 0; i < failures.size(); ++i) {
      out << fmt::format("{}\"{}\"", i == 0 ? "" : ", ", json_escape(failures[i]));
    }
    out << "],\n  \"targets\": [\n";
    for (std::size_t i = 0; i < verdicts.size(); ++i) {
      const Verdict& v = verdicts[i];
      out << fmt::format(
          "    {{\"target\": \"{}\", \"workload\": \"{}\", \"peer\": \"{}\", \"baseline\": "
          "\"{}\", \"bound\": {}, \"measured\": {}, \"status\": \"{}\"}}{}\n",
          json_escape(v.target->text), v.target->workload, v.target->peer, v.target->baseline,
          json_number(v.target->bound), v.measured ? json_number(*v.measured) : "null", v.status,
          i + 1 < verdicts.size() ? "," : "");
    }
    out << "  ]\n}\n";
    if (!out) {
      fmt::print(stderr, "fiberjob_bench: cannot write {}\n", options.json);
      return 1;
    }
  }

  // ---- Plot data: fiberjob's cost (time per unit of work) relative to each peer's ----------
  if (!options.plot_data.empty()) {
    std::ofstream out(options.plot_data);
    out << "workload";
    for (const std::string& peer : kPeers) out << "\t\"" << label(peer) << "\"";
    out << "\n";
    for (const Workload& w : defs) {
      // Rows with no peer (9: fiberjob only) would be empty groups in the chart.
      const bool any_peer = std::any_of(kPeers.begin(), kPeers.end(), [&](const std::string& p) {
        return ratio(results, w.name, p).has_value();
      });
      if (w.metric == Metric::CallsPerOp || is_memory(w.metric) || !any_peer) continue;
      out << "\"" << w.name << "\"";
      for (const std::string& peer : kPeers) {
        std::optional<double> r = ratio(results, w.name, peer);
        if (r && w.metric == Metric::MillionPerSecond) r = 1.0 / *r;  // throughput -> cost
        out << "\t" << (r ? fmt::format("{:.4f}", *r) : "-");
      }
      out << "\n";
    }
    if (!out) {
      fmt::print(stderr, "fiberjob_bench: cannot write {}\n", options.plot_data);
      return 1;
    }
  }
  if (!failures.empty()) {
    fmt::print(stderr, "fiberjob_bench: {} cell(s) FAILED, listed at the end of the table\n",
               failures.size());
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
