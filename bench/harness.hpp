#pragma once
// The benchmark harness: workload sizes, what one repetition returns, the registry every system
// adds its workloads to, and the definitions shared by every system (reference results, the
// parallel_for kernel, the allocator-call counter).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

/// Workload sizes. `full()` is the definition; `smoke()` the tiny run of the test suite.
struct Sizes {
  int fib_n = 30;                            ///< fib(n), every call spawns two jobs
  int skynet_depth = 6;                      ///< 10-ary tree, 10^depth leaves
  std::int64_t empty_jobs = 1'000'000;       ///< empty jobs submitted from one thread
  std::int64_t yields = 1'000'000;           ///< yields in total (half by each of the two jobs)
  std::int64_t round_trips = 100'000;        ///< wait/wake ping-pong round trips
  std::int64_t floats = 10'000'000;          ///< parallel_for elements
  std::int64_t alloc_warmup_rounds = 2'000;  ///< rounds before counting allocator calls
  std::int64_t alloc_rounds = 10'000;        ///< rounds counted
  static constexpr int kAllocChildren = 8;   ///< jobs spawned per allocation round
  std::int64_t suspended_jobs = 10'000;      ///< jobs suspended at once (memory, 7a)
  std::int64_t waiters = 20'000;             ///< coroutine jobs waiting on one gate (9)
  std::int64_t waiter_rounds = 1'000;        ///< gate releases timed (9), one step per job each
  std::int64_t mutex_ops = 1'000'000;        ///< lock/unlock pairs in all, half per worker (10a)
  std::int64_t sleeps = 1'000;               ///< sleeps of 1-5 ms whose lateness is measured (11)

  static Sizes full() { return {}; }
  static Sizes smoke() {
    Sizes s;
    s.fib_n = 12;
    s.skynet_depth = 3;
    s.empty_jobs = 10'000;
    s.yields = 10'000;
    s.round_trips = 1'000;
    s.floats = 100'000;
    s.alloc_warmup_rounds = 200;
    s.alloc_rounds = 500;
    s.suspended_jobs = 100;
    s.waiters = 200;
    s.waiter_rounds = 10;
    s.mutex_ops = 10'000;
    s.sleeps = 20;
    return s;
  }
};

/// What one repetition of a workload measured. Time workloads fill `ns`, allocation and memory
/// workloads `count`; all say how many operations that covers and the result the harness checks.
struct Run {
  double ns = 0;                        ///< wall time of the timed region
  double count = 0;                     ///< allocator calls in the counted window, or bytes
  double ops = 1;                       ///< operations covered (jobs, switches, round trips, waits)
  std::int64_t result = -1;             ///< checked against the workload's expected result
  std::map<std::string, double> extra;  ///< reported in the JSON, not checked
};

/// A wrong result: the run exits non-zero.
class CheckFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using WorkloadFn = std::function<Run(const Sizes&)>;

/// A system under test and how it is set up.
struct SystemInfo {
  std::string name;         ///< short name (--only, JSON)
  std::string label;        ///< table heading
  std::string version;      ///< library version
  std::string setup;        ///< workers and configuration
  std::string idle_policy;  ///< what an idle worker does
  /// Called once, after every workload has run: stops the system's threads.
  std::function<void()> teardown;
  /// Called after each of the system's runs (warm-ups included), before another system runs:
  /// stops or blocks any thread the system keeps busy while it has no work (Boost.Fiber's
  /// polling helper). Empty: the system's idle threads go to sleep on their own.
  std::function<void()> quiesce;
};

struct Entry {
  std::string workload;
  std::string system;
  WorkloadFn fn;
};

/// Collects every (workload, system) pair. Each system's file registers its own.
class Registry {
 public:
  void system(SystemInfo info) { systems_.push_back(std::move(info)); }
  void add(std::string workload, std::string system, WorkloadFn fn) {
    entries_.push_back({std::move(workload), std::move(system), std::move(fn)});
  }
  [[nodiscard]] const std::vector<SystemInfo>& systems() const { return systems_; }
  [[nodiscard]] const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<SystemInfo> systems_;
  std::vector<Entry> entries_;
};

void register_fiberjob(Registry& registry);
void register_tbb(Registry& registry);
void register_boost_fiber(Registry& registry);
void register_context_switch(Registry& registry);
void register_std_thread(Registry& registry);
/// Row 11, the timer service (timer_workloads.cpp).
void register_timer_workloads(Registry& registry);
/// Workload 7 (memory_workloads.cpp): each repetition runs in a child process of this binary.
void register_memory(Registry& registry);
/// The child side of workload 7: `fiberjob_bench --memory-child WORKLOAD SYSTEM JOBS DEPTH`
/// measures once and reports `key value` lines on stdout. Returns the exit status.
int memory_child_main(int argc, char** argv);

/// Waits until no other thread of this process is running (every one asleep or blocked, as
/// /proc/self/task says), polling every 0.1 ms, at most `timeout_ns`. The systems share the
/// process: one system's idle threads that still spin or poll would take a core from the next
/// one's measurement. Returns how long it waited, or a negative value on time-out, when
/// `busy_thread` (if given) receives the name of a thread still running.
double wait_for_quiet_threads(double timeout_ns, std::string* busy_thread = nullptr);

/// Wall-clock timer (steady_clock).
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  [[nodiscard]] double ns() const {
    return std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start_)
        .count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// ---- Definitions shared by every system -----------------------------------------------------

/// fib(n) computed serially: the expected result of the fib workload.
std::int64_t fib_reference(int n);
/// 10^depth: the leaves of the skynet tree.
std::int64_t skynet_leaves(int depth);
/// Sum of the leaf indices 0 .. leaves-1: the expected result of skynet.
std::int64_t skynet_sum(int depth);

/// The parallel_for body: out[i] = sqrt(in[i]) for i in [lo, hi). Compiled once (harness.cpp,
/// never inlined), so every system runs the same machine code.
void sqrt_range(const float* in, float* out, std::int64_t lo, std::int64_t hi);
/// in[i] = i; out filled with -1 (touched, so no system pays first-touch page faults).
void prepare_sqrt(std::vector<float>& in, std::vector<float>& out, std::int64_t n);
/// Elements with out[i] == sqrt(in[i]) exactly (the parallel_for result; expected: n).
std::int64_t count_correct_sqrt(const std::vector<float>& in, const std::vector<float>& out);

/// Counts global-allocator calls of the whole process while enabled (alloc_counter.cpp replaces
/// operator new/delete and malloc/calloc/realloc/aligned allocation for the bench binary).
namespace alloc {
struct Counts {
  std::uint64_t operator_new = 0;  ///< operator new / new[] (every form)
  std::uint64_t malloc = 0;        ///< malloc, calloc, realloc, posix_memalign, aligned_alloc…
  [[nodiscard]] std::uint64_t total() const { return operator_new + malloc; }
  /// Adds the calls made between two readings.
  void add(const Counts& from, const Counts& to) {
    operator_new += to.operator_new - from.operator_new;
    malloc += to.malloc - from.malloc;
  }
};
/// Turns counting on (off by default: the time workloads never pay for it).
void enable(bool on) noexcept;
[[nodiscard]] Counts read() noexcept;
}  // namespace alloc

/// Fills `run` from counts taken before and after a window of `ops` operations.
inline void fill_alloc_run(Run& run, const alloc::Counts& before, const alloc::Counts& after,
                           double ops) {
  run.count = static_cast<double>(after.total() - before.total());
  run.ops = ops;
  run.extra["operator_new_per_op"] =
      static_cast<double>(after.operator_new - before.operator_new) / ops;
  run.extra["malloc_per_op"] = static_cast<double>(after.malloc - before.malloc) / ops;
}

}  // namespace bench
