// Workload 7, memory, for fiberjob, oneTBB and Boost.Fiber:
//
//  7a `mem_suspended`: N jobs (10,000; 100 at smoke size) suspended at once, each waiting on one
//     shared event, on 2 workers; the resident set while all are suspended minus the resident
//     set before the system was built, divided by N. So the figure counts everything it takes
//     to hold N suspended jobs: the touched part of each stack, the job records, and whatever
//     the system allocates up front for them. fiberjob needs a pool of at least N fibers; it
//     gets Config::fiber_count = N + 3 (N suspended, one running fiber per worker, one spare)
//     with the default 64 KiB stacks. The event is a fiberjob Counter (this_fiber::wait), a
//     tbb::task::suspend point, and a Boost.Fiber mutex + condition_variable.
//  7b `mem_skynet`: the peak resident set during workload 2 (skynet), above the resident set of
//     the same process after the same setup (the system built and a 10-leaf skynet run).
//
// Every repetition runs in a fresh child process (this binary, `--memory-child`), because the
// peak resident set is per process and only grows, and because memory that earlier workloads
// freed but kept resident would hide new growth. The child reports on its standard output, one
// `key value` per line; the parent turns that into a Run.

#include <fmt/format.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/task.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <sys/resource.h>

#include <boost/fiber/algo/work_stealing.hpp>
#include <boost/fiber/all.hpp>

#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"
#include "process_memory.hpp"

namespace bench {
namespace {

namespace fj = fiberjob;
namespace bf = boost::fibers;

/// Resident set (bytes) at the steps of a 7a measurement.
struct Suspended {
  std::int64_t before = 0;     ///< before the system was built
  std::int64_t setup = 0;      ///< system built and warm, nothing suspended
  std::int64_t suspended = 0;  ///< all N jobs suspended at once
  std::int64_t completed = 0;  ///< jobs that ran to their end once released (the check)
};

/// Sleeps until `ready()`: the measuring thread leaves the CPUs to the workers.
template <class Ready>
void sleep_until(Ready ready) {
  while (!ready()) std::this_thread::sleep_for(std::chrono::microseconds(200));
}

// ---- 7a on each system -------------------------------------------------------------------

/// fiberjob: `n` jobs in `this_fiber::wait` on one armed Counter, on a pool of n + 3 fibers.
Suspended fiberjob_suspended(std::int64_t n) {
  constexpr std::uint32_t kWorkers = 2;
  Suspended m;
  m.before = memory::resident_bytes();
  fj::Config config;
  config.worker_count = kWorkers;
  config.fiber_count = static_cast<std::uint32_t>(n) + kWorkers + 1;
  fj::JobSystem js(config);
  fj::Counter warm;  // the system has run jobs
  for (std::uint32_t i = 0; i < kWorkers; ++i) js.run(warm, [] {});
  js.wait(warm);
  m.setup = memory::resident_bytes();

  fj::Counter gate;
  gate.add(1);
  std::atomic<std::int64_t> arrived{0};
  std::atomic<std::int64_t> finished{0};
  fj::Counter done;
  for (std::int64_t i = 0; i < n; ++i) {
    js.run(done, [&] {
      arrived.fetch_add(1);
      fj::this_fiber::wait(gate);
      finished.fetch_add(1);
    });
  }
  // Suspended: every job arrived and holds its fiber, and each worker runs one more.
  sleep_until([&] {
    return arrived.load() == n &&
           js.stats().fibers_in_use >= static_cast<std::uint64_t>(n) + kWorkers;
  });
  m.suspended = memory::resident_bytes();
  gate.signal();
  js.wait(done);
  // A wait that found the pool empty would have run inline instead of suspending.
  m.completed = js.stats().pool_exhausted == 0 ? finished.load() : -1;
  return m;
}

/// oneTBB: `n` tasks of a task_group in `tbb::task::suspend`, in an arena of 2.
Suspended tbb_suspended(std::int64_t n) {
  Suspended m;
  m.before = memory::resident_bytes();
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, 2);
  tbb::task_arena arena(2);
  arena.execute([] {  // the worker thread started
    tbb::task_group warm;
    for (int i = 0; i < 2; ++i) warm.run([] {});
    warm.wait();
  });
  std::vector<tbb::task::suspend_point> points(static_cast<std::size_t>(n));
  m.setup = memory::resident_bytes();

  std::atomic<std::int64_t> suspended{0};
  std::atomic<std::int64_t> finished{0};
  // The driver joins the arena (1 TBB worker + the driver), as the main thread does in the time
  // workloads; the main thread stays outside to measure and to resume.
  std::thread driver([&] {
    arena.execute([&] {
      tbb::task_group jobs;
      for (std::int64_t i = 0; i < n; ++i) {
        jobs.run([&, i] {
          tbb::task::suspend([&, i](tbb::task::suspend_point point) {
            points[static_cast<std::size_t>(i)] = point;
            suspended.fetch_add(1, std::memory_order_release);  // pairs with the loads below
          });
          finished.fetch_add(1);
        });
      }
      jobs.wait();
    });
  });
  sleep_until([&] { return suspended.load(std::memory_order_acquire) == n; });
  m.suspended = memory::resident_bytes();
  for (const tbb::task::suspend_point point : points) tbb::task::resume(point);
  driver.join();
  m.completed = finished.load();
  return m;
}

/// Boost.Fiber: `n` fibers waiting on one condition_variable, on work_stealing(2).
Suspended boost_fiber_suspended(std::int64_t n) {
  Suspended m;
  m.before = memory::resident_bytes();
  // work_stealing(2) on this thread and a helper, as in boost_fiber_workloads.cpp.
  bf::mutex stop_mutex;
  bf::condition_variable stop_cv;
  bool stop = false;
  std::thread helper([&] {
    bf::use_scheduling_algorithm<bf::algo::work_stealing>(2, false);
    std::unique_lock<bf::mutex> lock(stop_mutex);
    stop_cv.wait(lock, [&] { return stop; });
  });
  bf::use_scheduling_algorithm<bf::algo::work_stealing>(2, false);
  std::vector<bf::fiber> fibers;
  fibers.reserve(static_cast<std::size_t>(n));
  bf::fiber([] {}).join();
  m.setup = memory::resident_bytes();

  bf::mutex mutex;
  bf::condition_variable cv;
  bool go = false;
  std::atomic<std::int64_t> waiting{0};
  std::atomic<std::int64_t> finished{0};
  for (std::int64_t i = 0; i < n; ++i) {
    fibers.emplace_back([&] {
      std::unique_lock<bf::mutex> lock(mutex);
      waiting.fetch_add(1);
      cv.wait(lock, [&] { return go; });
      finished.fetch_add(1);
    });
  }
  while (waiting.load() < n) boost::this_fiber::yield();  // the main fiber lets them run
  m.suspended = memory::resident_bytes();
  {
    std::unique_lock<bf::mutex> lock(mutex);
    go = true;
  }
  cv.notify_all();
  for (bf::fiber& f : fibers) f.join();
  m.completed = finished.load();
  {
    std::unique_lock<bf::mutex> lock(stop_mutex);
    stop = true;
  }
  stop_cv.notify_all();
  helper.join();
  return m;
}

// ---- The child: one measurement, reported on stdout ----------------------------------------

/// One `key value` line of the child's report (result, count, ops: the fields of a Run).
void report(const char* key, double value) { fmt::print("{} {}\n", key, value); }

/// One `extra key value` line: goes into Run::extra (the JSON), not checked.
void report_extra(const char* key, double value) { fmt::print("extra {} {}\n", key, value); }

/// The child's own minor page faults (the parent's figure would not include them).
void report_minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  report_extra("child_minor_faults", static_cast<double>(usage.ru_minflt));
}

/// 7a in the child: measures `system` with `n` suspended jobs and reports.
void child_suspended(const std::string& system, std::int64_t n) {
  const Suspended m = system == "fiberjob" ? fiberjob_suspended(n)
                      : system == "tbb"    ? tbb_suspended(n)
                                           : boost_fiber_suspended(n);
  report("result", static_cast<double>(m.completed));
  report("count", static_cast<double>(m.suspended - m.before));
  report("ops", static_cast<double>(n));
  report_extra("before_bytes", static_cast<double>(m.before));
  report_extra("setup_bytes_per_job", static_cast<double>(m.setup - m.before) / n);
  report_extra("suspension_bytes_per_job", static_cast<double>(m.suspended - m.setup) / n);
  report_minor_faults();
}

/// 7b in the child: runs the setup, resets the peak, runs `system`'s skynet workload (from its
/// own file, through the registry) at `depth` and reports the peak above the setup.
void child_skynet(const std::string& system, int depth) {
  Registry registry;
  register_fiberjob(registry);
  register_tbb(registry);
  register_boost_fiber(registry);
  const Entry* skynet = nullptr;
  for (const Entry& e : registry.entries()) {
    if (e.workload == "skynet" && e.system == system) skynet = &e;
  }
  if (skynet == nullptr) throw CheckFailed("no skynet for " + system);
  Sizes sizes;
  sizes.skynet_depth = 1;  // the setup: builds the system (threads, pools) and warms it
  if (skynet->fn(sizes).result != skynet_sum(1)) throw CheckFailed("skynet(1) on " + system);
  const bool reset = memory::reset_peak();
  // Without the reset the peak still holds the setup's own high-water mark.
  const std::int64_t baseline = reset ? memory::resident_bytes() : memory::peak_resident_bytes();
  sizes.skynet_depth = depth;
  const Run run = skynet->fn(sizes);
  const std::int64_t peak = memory::peak_resident_bytes();
  report("result", static_cast<double>(run.result));
  report("count", static_cast<double>(peak - baseline));
  report("ops", 1);
  report_extra("peak_bytes", static_cast<double>(peak));
  report_extra("baseline_bytes", static_cast<double>(baseline));
  report_extra("peak_reset", reset ? 1 : 0);
  report_extra("skynet_ms", run.ns / 1e6);
  report_minor_faults();
}

// ---- The parent: one repetition = one child --------------------------------------------------

/// One repetition in the parent: starts the child and turns its report into a Run.
Run run_child(const std::string& workload, const std::string& system, const Sizes& sizes) {
  const std::string output =
      memory::run_self({"--memory-child", workload, system, std::to_string(sizes.suspended_jobs),
                        std::to_string(sizes.skynet_depth)});
  Run run;
  bool has_result = false;
  std::istringstream lines(output);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream fields(line);
    std::string key;
    double value = 0;
    fields >> key;
    if (key == "extra") {
      std::string name;
      if (fields >> name >> value) run.extra[name] = value;
    } else if (fields >> value) {
      if (key == "result") {
        run.result = static_cast<std::int64_t>(value);
        has_result = true;
      } else if (key == "count") {
        run.count = value;
      } else if (key == "ops") {
        run.ops = value;
      }
    }
  }
  if (!has_result) throw CheckFailed(workload + " on " + system + ": the child reported nothing");
  return run;
}

}  // namespace

int memory_child_main(int argc, char** argv) {
  if (argc != 6) {
    std::fputs("usage: fiberjob_bench --memory-child WORKLOAD SYSTEM JOBS SKYNET_DEPTH\n", stderr);
    return 2;
  }
  const std::string workload = argv[2];
  const std::string system = argv[3];
  try {
    if (system != "fiberjob" && system != "tbb" && system != "boost_fiber") {
      throw CheckFailed("no memory workload for system " + system);
    }
    if (workload == "mem_suspended") {
      child_suspended(system, std::stoll(argv[4]));
    } else if (workload == "mem_skynet") {
      child_skynet(system, std::stoi(argv[5]));
    } else {
      throw CheckFailed("no memory workload named " + workload);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fiberjob_bench --memory-child %s %s: %s\n", workload.c_str(),
                 system.c_str(), e.what());
    return 1;
  }
  std::fflush(stdout);
  // The measurement is reported: skip the systems' teardown (threads stop with the process).
  std::_Exit(0);
}

void register_memory(Registry& registry) {
  for (const char* system : {"fiberjob", "tbb", "boost_fiber"}) {
    for (const char* workload : {"mem_suspended", "mem_skynet"}) {
      registry.add(workload, system,
                   [workload = std::string(workload), system = std::string(system)](
                       const Sizes& sizes) { return run_child(workload, system, sizes); });
    }
  }
}

}  // namespace bench
