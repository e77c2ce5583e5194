// The benchmark's report (report.hpp): the Markdown tables, the JSON and the gnuplot data.

#include "report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "machine.hpp"

namespace bench {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

std::string format_value(double v) {
  if (v == 0) return "0";
  const double a = std::fabs(v);
  if (a >= 1000) return fmt::format("{:.0f}", v);
  if (a >= 100) return fmt::format("{:.1f}", v);
  if (a >= 10) return fmt::format("{:.2f}", v);
  if (a >= 0.01) return fmt::format("{:.3f}", v);
  return fmt::format("{:.2g}", v);
}

namespace {

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

std::optional<double> ratio(const std::map<Key, Result>& results, const std::string& workload,
                            const std::string& peer) {
  const auto f = results.find({workload, "fiberjob"});
  const auto p = results.find({workload, peer});
  if (f == results.end() || p == results.end() || p->second.median == 0) return std::nullopt;
  return f->second.median / p->second.median;
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

std::string label_of(const Registry& registry, const std::string& name) {
  for (const SystemInfo& s : registry.systems()) {
    if (s.name == name) return s.label;
  }
  return name;
}

/// A table's header row and rule line: the fixed columns `head` (with their `rule`), then a
/// column per peer, and with `with_ratio` a ÷ column after each.
std::string table_header(const Registry& registry, std::string head, std::string rule,
                         bool with_ratio) {
  for (const std::string& peer : kPeers) {
    head += fmt::format(" {} |{}", label_of(registry, peer), with_ratio ? " ÷ |" : "");
    rule += with_ratio ? " ---: | ---: |" : " ---: |";
  }
  return head + "\n" + rule + "\n";
}

/// The medians, with their range, and each peer's ratio to fiberjob.
std::string results_table(const std::vector<Workload>& defs, const Registry& registry,
                          std::map<Key, Result>& results) {
  std::string table =
      table_header(registry, "| workload | unit | fiberjob |", "| --- | --- | ---: |", true);
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

  return table;
}

/// max ÷ min of the counted repetitions, per cell.
std::string spread_table(const std::vector<Workload>& defs, const Registry& registry,
                         const std::map<Key, Result>& results) {
  std::string spread = table_header(
      registry, "| spread (max ÷ min of the repetitions) | fiberjob |", "| --- | ---: |", false);
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

  return spread;
}

struct Verdict {
  const Target* target;
  std::optional<double> measured;
  std::string status;
};

/// Each of the targets (rows.cpp) judged on the medians.
std::vector<Verdict> judge_targets(const Outcome& outcome) {
  const std::map<Key, Result>& results = outcome.results;
  const std::set<Key>& failed_cells = outcome.failed_cells;
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
  return verdicts;
}

std::string targets_table(const std::vector<Verdict>& verdicts) {
  std::string targets =
      "| target (the issue's) | fiberjob ÷ peer, or fiberjob's value | |\n"
      "| --- | ---: | --- |\n";
  for (const Verdict& v : verdicts) {
    targets += fmt::format("| {} | {} | {} |\n", v.target->text,
                           v.measured ? fmt::format("{:.3g}", *v.measured) : "—", v.status);
  }
  return targets;
}

/// The Markdown report on stdout.
void print_markdown(const Registry& registry, const Outcome& outcome, const RunInfo& info,
                    const std::string& table, const std::string& spread,
                    const std::string& targets) {
  const std::vector<std::string>& failures = outcome.failures;
  Machine machine;
  fmt::print(
      "## fiberjob_bench ({} sizes; median (min–max) of {} after {} warm-up; 2 workers; systems "
      "interleaved)\n\n",
      info.smoke ? "smoke" : "full", info.reps, info.warmups);
  fmt::print(
      "Each cell is the median of the repetitions, with their minimum and maximum in "
      "parentheses. Every repetition ran each system once, in an order rotating by one system "
      "per repetition. Ratio columns (÷) are fiberjob ÷ peer of the medians: below 1 means "
      "fiberjob takes less time (7: less memory); for M jobs/s above 1 means fiberjob is "
      "faster. Targets are judged on the medians.\n\n");
  fmt::print("{}\n{}\n", table, spread);
  if (info.smoke) fmt::print("(smoke sizes: the targets are not meaningful)\n\n");
  fmt::print("{}\n", targets);
  fmt::print("| system | version | setup | idle policy |\n| --- | --- | --- | --- |\n");
  for (const SystemInfo& s : registry.systems()) {
    fmt::print("| {} | {} | {} | {} |\n", s.label, s.version, s.setup, s.idle_policy);
  }
  fmt::print("\nMachine: {}, {} CPUs, {} RAM, {}; {}; {}\n", machine.cpu, machine.cpus,
             machine.memory, machine.kernel, machine.compiler, machine.date);
  fmt::print("fiberjob revision: {}\nLoad: {}\n", info.revision, info.interference);
  if (!failures.empty()) {
    fmt::print("\nFAILED ({}; their cells are missing above):\n", failures.size());
    for (const std::string& f : failures) fmt::print("- {}\n", f);
  }
}

/// The JSON array of every cell: its samples, their range and order, its ratios.
void write_json_results(std::ofstream& out, const std::vector<Workload>& defs,
                        const Registry& registry, const std::map<Key, Result>& results) {
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
}

/// The JSON file's opening fields: date, revision, mode, machine, load and what the fields mean.
void write_json_header(std::ofstream& out, const RunInfo& info) {
  Machine machine;
  out << "{\n";
  out << fmt::format("  \"generated\": \"{}\",\n", machine.date);
  out << fmt::format("  \"revision\": \"{}\",\n", json_escape(info.revision));
  out << fmt::format("  \"mode\": \"{}\",\n  \"repetitions\": {},\n  \"warmups\": {},\n",
                     info.smoke ? "smoke" : "full", info.reps, info.warmups);
  out << fmt::format(
      "  \"machine\": {{\"cpu\": \"{}\", \"cpus\": {}, \"memory\": \"{}\", \"kernel\": "
      "\"{}\", \"compiler\": \"{}\"}},\n",
      json_escape(machine.cpu), machine.cpus, json_escape(machine.memory),
      json_escape(machine.kernel), json_escape(machine.compiler));
  out << fmt::format(
      "  \"load\": {{\"wall_seconds\": {}, \"other_processes_cpu_seconds\": {}, "
      "\"steal_seconds\": {}, \"core_to_core_round_trip_ns\": {}, \"summary\": \"{}\"}},\n",
      json_number(info.wall_s), json_number(info.other_s), json_number(info.steal_s),
      json_number(info.round_trip_ns), json_escape(info.interference));
  out << "  \"ratio\": \"fiberjob median / system median, of the metric in 'unit'\",\n";
  out << "  \"ratio_paired\": \"median over the repetitions of fiberjob's value / the system's "
         "value in the same repetition\",\n";
  out << "  \"order\": \"for each workload, each repetition (warm-ups first) runs every "
         "selected system once, in an order rotating by one system per repetition; "
         "'positions' gives each counted sample's place in its repetition, 'started_s' its "
         "start in seconds since the first run\",\n";
}

/// The JSON file's "systems" array: one object per system, as the registry lists them.
void write_json_systems(std::ofstream& out, const Registry& registry) {
  out << "  \"systems\": [\n";
  for (std::size_t i = 0; i < registry.systems().size(); ++i) {
    const SystemInfo& s = registry.systems()[i];
    out << fmt::format(
        "    {{\"name\": \"{}\", \"label\": \"{}\", \"version\": \"{}\", \"setup\": \"{}\", "
        "\"idle_policy\": \"{}\"}}{}\n",
        s.name, json_escape(s.label), json_escape(s.version), json_escape(s.setup),
        json_escape(s.idle_policy), i + 1 < registry.systems().size() ? "," : "");
  }
  out << "  ],\n";
}

/// The JSON file's "targets" array: each target with its bound, measurement and status.
void write_json_targets(std::ofstream& out, const std::vector<Verdict>& verdicts) {
  out << "  \"targets\": [\n";
  for (std::size_t i = 0; i < verdicts.size(); ++i) {
    const Verdict& v = verdicts[i];
    out << fmt::format(
        "    {{\"target\": \"{}\", \"workload\": \"{}\", \"peer\": \"{}\", \"baseline\": "
        "\"{}\", \"bound\": {}, \"measured\": {}, \"status\": \"{}\"}}{}\n",
        json_escape(v.target->text), v.target->workload, v.target->peer, v.target->baseline,
        json_number(v.target->bound), v.measured ? json_number(*v.measured) : "null", v.status,
        i + 1 < verdicts.size() ? "," : "");
  }
  out << "  ]\n";
}

/// The JSON file: the machine, the load, every sample of every cell, the targets.
bool write_json(const std::string& path, const std::vector<Workload>& defs,
                const Registry& registry, const Outcome& outcome, const RunInfo& info,
                const std::vector<Verdict>& verdicts) {
  std::ofstream out(path);
  write_json_header(out, info);
  write_json_systems(out, registry);
  out << "  \"results\": [\n";
  write_json_results(out, defs, registry, outcome.results);
  out << "\n  ],\n  \"failures\": [";
  for (std::size_t i = 0; i < outcome.failures.size(); ++i) {
    out << fmt::format("{}\"{}\"", i == 0 ? "" : ", ", json_escape(outcome.failures[i]));
  }
  out << "],\n";
  write_json_targets(out, verdicts);
  out << "}\n";
  if (!out) {
    fmt::print(stderr, "fiberjob_bench: cannot write {}\n", path);
    return false;
  }
  return true;
}

/// The gnuplot data: fiberjob's cost (time per unit of work) relative to each peer's.
bool write_plot_data(const std::string& path, const std::vector<Workload>& defs,
                     const Registry& registry, const std::map<Key, Result>& results) {
  auto label = [&](const std::string& name) { return label_of(registry, name); };
  std::ofstream out(path);
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
    fmt::print(stderr, "fiberjob_bench: cannot write {}\n", path);
    return false;
  }
  return true;
}

}  // namespace

bool report(const std::vector<Workload>& defs, const Registry& registry, Outcome& outcome,
            const RunInfo& info, const std::string& json_path, const std::string& plot_path) {
  const std::string table = results_table(defs, registry, outcome.results);
  const std::string spread = spread_table(defs, registry, outcome.results);
  const std::vector<Verdict> verdicts = judge_targets(outcome);
  print_markdown(registry, outcome, info, table, spread, targets_table(verdicts));
  if (!json_path.empty() && !write_json(json_path, defs, registry, outcome, info, verdicts)) {
    return false;
  }
  return plot_path.empty() || write_plot_data(plot_path, defs, registry, outcome.results);
}

}  // namespace bench
