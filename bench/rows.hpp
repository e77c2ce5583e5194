#pragma once
// The rows of the benchmark table: each workload's definition (title, metric, expected result),
// the order the workloads run in, the peers' columns and the targets (rows.cpp).

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "harness.hpp"

namespace bench {

enum class Metric { Milliseconds, NsPerOp, MillionPerSecond, CallsPerOp, KibPerOp, Mebibytes };

/// Memory rows (7): reported and compared like the others, but not drawn in the time chart.
bool is_memory(Metric m);
const char* unit_of(Metric m);
/// One run's value in `m`.
double value_of(Metric m, const Run& run);
/// 1234567 -> "1,234,567".
std::string with_commas(std::int64_t v);

struct Expect {
  std::int64_t value = 0;
  bool at_least = false;  // yield: alternations may miss the first and last yield
};

struct Workload {
  std::string name;
  std::string title;
  Metric metric;
  std::function<Expect(const Sizes&)> expect;
};

/// The workloads, in table order. Definitions are the issue's; `Sizes` scales them.
std::vector<Workload> workloads(const Sizes& s);

/// The order the workloads run in. The systems are interleaved within each workload (see
/// run_workload), so every system stays alive from its first run to the end: Boost.Fiber's
/// work_stealing pool can be built only once per process, and the others stay warm as it does.
/// A system's idle threads must then not disturb another system's runs. The one-worker
/// workloads still run first, before Boost.Fiber's two-worker pool exists, and after every run
/// the harness quiesces the system (Boost.Fiber: its polling helper thread is blocked) and waits
/// until no other thread of the process runs (TBB's and fiberjob's idle workers spin a while
/// before they sleep).
extern const std::vector<std::string> kExecutionOrder;

/// Peers in table order (fiberjob is the reference column).
extern const std::vector<std::string> kPeers;

struct Target {
  std::string workload;
  std::string peer;  // empty: a target on fiberjob's own value (or speedup, see baseline)
  enum class Kind { AtMost, AtLeast, Zero } kind;
  double bound;
  std::string text;
  /// Non-empty (with no peer): the target is on fiberjob's median of this workload ÷ its median
  /// of `workload`, both in a time per operation: the speedup of `workload` over `baseline`.
  std::string baseline = {};
};

/// The targets, in the order they are printed.
extern const std::vector<Target> kTargets;

}  // namespace bench
