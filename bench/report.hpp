#pragma once
// The benchmark's report: each cell's results over its repetitions, and what is written from
// them: the Markdown tables (medians with their range, each peer's ratio, the spread, the
// targets marked met/missed) on stdout, the JSON and the gnuplot data file.

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "harness.hpp"
#include "rows.hpp"

namespace bench {

/// The median of `v` (the mean of the two middle values for an even count); `v` not empty.
double median(std::vector<double> v);

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

using Key = std::pair<std::string, std::string>;  // workload, system

/// What the runs of every workload left behind.
struct Outcome {
  std::map<Key, Result> results;
  std::vector<std::string> failures;  // "workload on system: what went wrong"
  std::set<Key> failed_cells;
  int unquiet_runs = 0;  // runs that started while another thread of ours still ran
};

/// The circumstances of a run, for the report's header and the JSON.
struct RunInfo {
  bool smoke = false;
  int reps = 0;
  int warmups = 0;
  std::string revision;
  double wall_s = 0;         ///< the whole run, s
  double other_s = 0;        ///< CPU time other processes used meanwhile, s
  double steal_s = 0;        ///< hypervisor steal meanwhile, s
  double round_trip_ns = 0;  ///< core-to-core round trip before the run, ns (-1: not measured)
  std::string interference;  ///< the three above in a sentence
};

/// A value with 3 significant digits or so, as the tables show it.
std::string format_value(double v);

/// Prints the Markdown report of `outcome` on stdout, then writes the JSON to `json_path` and
/// the gnuplot data to `plot_path` (each skipped when empty). Returns false when a file could
/// not be written (the message is on stderr).
bool report(const std::vector<Workload>& defs, const Registry& registry, Outcome& outcome,
            const RunInfo& info, const std::string& json_path, const std::string& plot_path);

}  // namespace bench
