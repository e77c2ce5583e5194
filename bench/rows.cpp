// The rows of the benchmark table (rows.hpp): definitions, execution order, targets.

#include "rows.hpp"

#include <fmt/format.h>

#include <cstdint>
#include <iterator>
#include <string>
#include <vector>

namespace bench {

bool is_memory(Metric m) { return m == Metric::KibPerOp || m == Metric::Mebibytes; }

const char* unit_of(Metric m) {
  switch (m) {
    case Metric::Milliseconds:
      return "ms";
    case Metric::NsPerOp:
      return "ns/op";
    case Metric::MillionPerSecond:
      return "M jobs/s";
    case Metric::CallsPerOp:
      return "calls/op";
    case Metric::KibPerOp:
      return "KiB/job";
    case Metric::Mebibytes:
      return "MiB";
  }
  return "";
}

double value_of(Metric m, const Run& run) {
  switch (m) {
    case Metric::Milliseconds:
      return run.ns / 1e6;
    case Metric::NsPerOp:
      return run.ns / run.ops;
    case Metric::MillionPerSecond:
      return run.ops / run.ns * 1e3;
    case Metric::CallsPerOp:
      return run.count / run.ops;
    case Metric::KibPerOp:
      return run.count / run.ops / 1024;
    case Metric::Mebibytes:
      return run.count / (1024 * 1024);
  }
  return 0;
}

std::string with_commas(std::int64_t v) {
  std::string digits = std::to_string(v);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

namespace {

// Rows 1-3b: spawning and joining many jobs (fib, skynet and their coroutine forms, empty jobs).
std::vector<Workload> spawn_rows(const Sizes& s) {
  const std::string leaves = with_commas(skynet_leaves(s.skynet_depth));
  return {
      {"fib", fmt::format("1. fib({}), 2 spawns + 1 wait per call", s.fib_n), Metric::Milliseconds,
       [](const Sizes& z) { return Expect{fib_reference(z.fib_n)}; }},
      {"skynet", fmt::format("2. skynet, {} leaves (10-ary, depth {})", leaves, s.skynet_depth),
       Metric::Milliseconds, [](const Sizes& z) { return Expect{skynet_sum(z.skynet_depth)}; }},
      {"fib_co",
       fmt::format("1c. fib({}), coroutine jobs: 2 spawns + 1 co_await ctx.wait per call "
                   "(TBB: its row 1)",
                   s.fib_n),
       Metric::Milliseconds, [](const Sizes& z) { return Expect{fib_reference(z.fib_n)}; }},
      {"skynet_co",
       fmt::format("2c. skynet, {} leaves, coroutine jobs and co_await ctx.wait (TBB: its row 2)",
                   leaves),
       Metric::Milliseconds, [](const Sizes& z) { return Expect{skynet_sum(z.skynet_depth)}; }},
      {"empty_jobs",
       fmt::format("3. {} empty jobs from one thread; fiberjob: main thread attached "
                   "(AttachedWorker) + 1 worker thread",
                   with_commas(s.empty_jobs)),
       Metric::MillionPerSecond, [](const Sizes& z) { return Expect{z.empty_jobs}; }},
      {"empty_jobs_plain",
       fmt::format("3b. {} empty jobs from one thread; fiberjob default setup: main thread "
                   "submits and parks in JobSystem::wait, 2 worker threads (peers: as row 3)",
                   with_commas(s.empty_jobs)),
       Metric::MillionPerSecond, [](const Sizes& z) { return Expect{z.empty_jobs}; }},
  };
}

// Rows 4-6: yield, wait/wake round trips and parallel_for.
std::vector<Workload> switch_rows(const Sizes& s) {
  return {
      {"yield", fmt::format("4. yield, 2 jobs on 1 worker, {} yields", with_commas(s.yields)),
       Metric::NsPerOp,
       [](const Sizes& z) {
         return Expect{z.yields - 2, true};
       }},
      {"pingpong_1w",
       fmt::format("5a. wait/wake ping-pong, 1 worker, {} round trips", with_commas(s.round_trips)),
       Metric::NsPerOp, [](const Sizes& z) { return Expect{z.round_trips}; }},
      {"pingpong_2w",
       fmt::format("5b. wait/wake ping-pong, 2 workers, {} round trips",
                   with_commas(s.round_trips)),
       Metric::NsPerOp, [](const Sizes& z) { return Expect{z.round_trips}; }},
      {"parallel_for", fmt::format("6. parallel_for sqrt, {} floats", with_commas(s.floats)),
       Metric::Milliseconds, [](const Sizes& z) { return Expect{z.floats}; }},
  };
}

// Rows 7-8: resident memory (in child processes) and allocator calls.
std::vector<Workload> memory_rows(const Sizes& s) {
  const std::string leaves = with_commas(skynet_leaves(s.skynet_depth));
  return {
      {"mem_suspended",
       fmt::format("7a. RSS per suspended job, {} jobs suspended at once (child process)",
                   with_commas(s.suspended_jobs)),
       Metric::KibPerOp, [](const Sizes& z) { return Expect{z.suspended_jobs}; }},
      {"mem_skynet",
       fmt::format("7b. skynet peak RSS above setup, {} leaves (child process)", leaves),
       Metric::Mebibytes, [](const Sizes& z) { return Expect{skynet_sum(z.skynet_depth)}; }},
      {"alloc_spawn", "8a. allocator calls per spawned job (warm)", Metric::CallsPerOp,
       [](const Sizes& z) { return Expect{z.alloc_rounds}; }},
      {"alloc_wait", "8b. allocator calls per wait (warm)", Metric::CallsPerOp,
       [](const Sizes& z) { return Expect{z.alloc_rounds}; }},
      {"alloc_yield", "8c. allocator calls per yield (warm)", Metric::CallsPerOp,
       [](const Sizes& z) { return Expect{z.alloc_rounds}; }},
  };
}

// Rows 9-11: many waiters on one counter, Mutex, Event and the timer service.
std::vector<Workload> sync_rows(const Sizes& s) {
  return {
      {"many_waiters_1w",
       fmt::format("9a. many waiters on one counter: {} coroutine jobs co_await one gate, {} "
                   "releases, 1 worker; per agent step",
                   with_commas(s.waiters), with_commas(s.waiter_rounds)),
       Metric::NsPerOp,
       [](const Sizes& z) {
         return Expect{z.waiters * (z.waiter_rounds + 1)};  // + the untimed first round
       }},
      {"many_waiters_2w",
       fmt::format("9b. many waiters on one counter: {} coroutine jobs co_await one gate, {} "
                   "releases, 2 workers; per agent step",
                   with_commas(s.waiters), with_commas(s.waiter_rounds)),
       Metric::NsPerOp, [](const Sizes& z) { return Expect{z.waiters * (z.waiter_rounds + 1)}; }},
      {"many_waiters_stop_1w",
       fmt::format("9c. as 9a, each agent spawned with a stop token that is never stopped "
                   "(stoppable counter waits), 1 worker; per agent step"),
       Metric::NsPerOp, [](const Sizes& z) { return Expect{z.waiters * (z.waiter_rounds + 1)}; }},
      {"many_waiters_stop_2w",
       fmt::format("9d. as 9b, each agent spawned with a stop token that is never stopped "
                   "(stoppable counter waits), 2 workers; per agent step"),
       Metric::NsPerOp, [](const Sizes& z) { return Expect{z.waiters * (z.waiter_rounds + 1)}; }},
      {"mutex_2w",
       fmt::format("10a. contended mutex, 2 workers: {} lock/unlock pairs in all, a shared "
                   "increment each (fiberjob::Mutex; peers: boost::fibers::mutex, std::mutex)",
                   with_commas(s.mutex_ops)),
       Metric::NsPerOp, [](const Sizes& z) { return Expect{z.mutex_ops}; }},
      {"event_pingpong_2w",
       fmt::format("10b. Event ping-pong, 2 workers, {} round trips (two auto-reset events; "
                   "Boost.Fiber: mutex + condition_variable)",
                   with_commas(s.round_trips)),
       Metric::NsPerOp, [](const Sizes& z) { return Expect{z.round_trips}; }},
      {"sleep_accuracy_2w",
       fmt::format("11. sleep accuracy, idle system, 2 workers: {} sleeps of 1-5 ms from one "
                   "plain job; p99 of wake-up time - deadline (fiberjob's timer service; "
                   "std::thread: a plain thread's std::this_thread::sleep_until, the machine's "
                   "floor)",
                   with_commas(s.sleeps)),
       Metric::NsPerOp, [](const Sizes& z) { return Expect{z.sleeps}; }},
  };
}

}  // namespace

std::vector<Workload> workloads(const Sizes& s) {
  std::vector<Workload> all;
  for (auto* group : {&spawn_rows, &switch_rows, &memory_rows, &sync_rows}) {
    std::vector<Workload> rows = group(s);
    all.insert(all.end(), std::make_move_iterator(rows.begin()),
               std::make_move_iterator(rows.end()));
  }
  return all;
}

const std::vector<std::string> kExecutionOrder = {"yield",
                                                  "pingpong_1w",
                                                  "alloc_yield",
                                                  "many_waiters_1w",
                                                  "many_waiters_stop_1w",
                                                  "fib",
                                                  "skynet",
                                                  "fib_co",
                                                  "skynet_co",
                                                  "empty_jobs",
                                                  "empty_jobs_plain",
                                                  "pingpong_2w",
                                                  "many_waiters_2w",
                                                  "many_waiters_stop_2w",
                                                  "parallel_for",
                                                  "alloc_spawn",
                                                  "alloc_wait",
                                                  "mutex_2w",
                                                  "event_pingpong_2w",
                                                  "sleep_accuracy_2w",
                                                  "mem_suspended",
                                                  "mem_skynet"};

const std::vector<std::string> kPeers = {"tbb", "boost_fiber", "boost_context", "std_thread"};

const std::vector<Target> kTargets = {
    {"empty_jobs_plain", "tbb", Target::Kind::AtLeast, 2.5,
     "empty jobs, fiberjob's default setup (3b): >= 2.5x TBB's throughput"},
    {"fib", "tbb", Target::Kind::AtMost, 0.6, "fib(30): <= 0.6x TBB's time"},
    {"skynet", "tbb", Target::Kind::AtMost, 0.9, "skynet: <= 0.9x TBB's time"},
    {"fib_co", "tbb", Target::Kind::AtMost, 0.6, "fib(30), coroutine jobs: <= 0.6x TBB's time"},
    {"skynet_co", "tbb", Target::Kind::AtMost, 0.6, "skynet, coroutine jobs: <= 0.6x TBB's time"},
    {"yield", "boost_fiber", Target::Kind::AtMost, 0.33, "yield: <= 0.33x Boost.Fiber"},
    {"yield", "boost_context", Target::Kind::AtMost, 3.0, "yield: <= 3x the raw switch"},
    {"pingpong_1w", "tbb", Target::Kind::AtMost, 0.1, "wait/wake, 1 worker: <= 0.1x TBB"},
    {"pingpong_2w", "tbb", Target::Kind::AtMost, 0.1, "wait/wake, 2 workers: <= 0.1x TBB"},
    {"pingpong_1w", "boost_fiber", Target::Kind::AtMost, 0.35,
     "wait/wake, 1 worker: <= 0.35x Boost.Fiber"},
    {"pingpong_2w", "boost_fiber", Target::Kind::AtMost, 0.35,
     "wait/wake, 2 workers: <= 0.35x Boost.Fiber"},
    {"parallel_for", "std_thread", Target::Kind::AtMost, 1.05,
     "parallel_for: within 5% of the std::thread split (at most 1.05x its time)"},
    {"alloc_spawn", "", Target::Kind::Zero, 0, "zero allocator calls per spawned job (warm)"},
    {"alloc_wait", "", Target::Kind::Zero, 0, "zero allocator calls per wait (warm)"},
    {"alloc_yield", "", Target::Kind::Zero, 0, "zero allocator calls per yield (warm)"},
    {"many_waiters_1w", "", Target::Kind::AtMost, 40,
     "many waiters on one counter, 1 worker: <= 40 ns per agent step"},
    {"many_waiters_2w", "", Target::Kind::AtLeast, 1.7,
     "many waiters on one counter: 2 workers >= 1.7x faster than 1 (9a ÷ 9b)", "many_waiters_1w"},
    {"mem_suspended", "", Target::Kind::AtMost, 16,
     "RSS per suspended job: <= 16 KiB (64 KiB stacks)"},
    {"mem_skynet", "", Target::Kind::AtMost, 64, "skynet peak RSS: <= 64 MiB"},
    {"sleep_accuracy_2w", "", Target::Kind::AtMost, 1e6,
     "sleep accuracy, idle system: p99 lateness <= 1 ms"},
};

}  // namespace bench
