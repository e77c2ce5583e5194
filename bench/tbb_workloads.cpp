// oneTBB (Debian libtbb-dev): task_group for spawn/wait, tbb::parallel_for, and resumable
// tasks (tbb::task::suspend / resume) for the wait/wake ping-pong. Two threads: a task_arena of
// concurrency 2 that the main thread joins (one TBB worker + the main thread), limited to 2 by
// global_control; the one-worker rows use an arena of concurrency 1 (the main thread alone).

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <oneapi/tbb/version.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "harness.hpp"

namespace bench {
namespace {

struct Env {
  // Lets the teardown wait for TBB's worker threads to exit (tbb::finalize).
  tbb::task_scheduler_handle handle{tbb::attach{}};
  std::unique_ptr<tbb::global_control> limit =
      std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, 2);
  std::unique_ptr<tbb::task_arena> two = std::make_unique<tbb::task_arena>(2);
  std::unique_ptr<tbb::task_arena> one = std::make_unique<tbb::task_arena>(1);
};
std::unique_ptr<Env>& env_ptr() {
  static std::unique_ptr<Env> env;
  return env;
}
tbb::task_arena& arena(int workers) {
  std::unique_ptr<Env>& env = env_ptr();
  if (!env) env = std::make_unique<Env>();
  return workers == 1 ? *env->one : *env->two;
}

void teardown() {
  std::unique_ptr<Env>& env = env_ptr();
  if (!env) return;
  env->one.reset();
  env->two.reset();
  env->limit.reset();
  (void)tbb::finalize(env->handle, std::nothrow);  // best effort: workers exit
  env.reset();
}

// ---- 1. fib ----------------------------------------------------------------------------------

std::int64_t fib_tbb(int n) {
  if (n < 2) return n;
  std::int64_t a = 0;
  std::int64_t b = 0;
  tbb::task_group children;
  children.run([n, &a] { a = fib_tbb(n - 1); });
  children.run([n, &b] { b = fib_tbb(n - 2); });
  children.wait();
  return a + b;
}

Run fib(const Sizes& sizes) {
  tbb::task_arena& a = arena(2);
  Run run;
  const Stopwatch watch;
  a.execute([&] { run.result = fib_tbb(sizes.fib_n); });
  run.ns = watch.ns();
  return run;
}

// ---- 2. skynet -------------------------------------------------------------------------------

std::int64_t skynet_tbb(std::int64_t num, std::int64_t size) {
  if (size == 1) return num;
  std::array<std::int64_t, 10> sums{};
  const std::int64_t child = size / 10;
  tbb::task_group children;
  for (int i = 0; i < 10; ++i) {
    children.run([num, child, i, &sums] {
      sums[static_cast<std::size_t>(i)] = skynet_tbb(num + i * child, child);
    });
  }
  children.wait();
  std::int64_t sum = 0;
  for (std::int64_t s : sums) sum += s;
  return sum;
}

Run skynet(const Sizes& sizes) {
  tbb::task_arena& a = arena(2);
  Run run;
  const std::int64_t leaves = skynet_leaves(sizes.skynet_depth);
  const Stopwatch watch;
  a.execute([&] { run.result = skynet_tbb(0, leaves); });
  run.ns = watch.ns();
  return run;
}

// ---- 3. empty jobs ---------------------------------------------------------------------------

Run empty_jobs(const Sizes& sizes) {
  tbb::task_arena& a = arena(2);
  Run run;
  const Stopwatch watch;
  a.execute([&] {
    tbb::task_group jobs;
    for (std::int64_t i = 0; i < sizes.empty_jobs; ++i) jobs.run([] {});
    jobs.wait();
  });
  run.ns = watch.ns();
  run.ops = static_cast<double>(sizes.empty_jobs);
  // Empty jobs cannot count themselves; TBB keeps no statistics: the wait returned.
  run.result = sizes.empty_jobs;
  return run;
}

// ---- 5. wait/wake ping-pong through resumable tasks -------------------------------------------

/// A one-shot event on tbb::task::suspend/resume, the TBB counterpart of an armed counter: the
/// waiter suspends its task (TBB switches the thread to other work), the signaller resumes it.
class Event {
 public:
  void wait() {
    int signalled = kSignalled;
    if (state_.compare_exchange_strong(signalled, kEmpty, std::memory_order_acquire)) return;
    tbb::task::suspend([this](tbb::task::suspend_point tag) {
      waiter_ = tag;
      int empty = kEmpty;
      if (!state_.compare_exchange_strong(empty, kWaiting, std::memory_order_acq_rel)) {
        state_.store(kEmpty, std::memory_order_relaxed);  // signalled meanwhile
        tbb::task::resume(tag);
      }
    });
  }
  void signal() {
    int empty = kEmpty;
    if (state_.compare_exchange_strong(empty, kSignalled, std::memory_order_acq_rel)) return;
    const tbb::task::suspend_point tag = waiter_;  // kWaiting: published by the CAS above
    state_.store(kEmpty, std::memory_order_relaxed);
    tbb::task::resume(tag);
  }

 private:
  static constexpr int kEmpty = 0;
  static constexpr int kSignalled = 1;
  static constexpr int kWaiting = 2;
  std::atomic<int> state_{kEmpty};
  tbb::task::suspend_point waiter_{};
};

Run pingpong(int workers, const Sizes& sizes) {
  tbb::task_arena& a = arena(workers);
  Event ping;
  Event pong;
  const std::int64_t n = sizes.round_trips;
  std::int64_t ball = 0;
  std::int64_t ok_a = 0;
  std::int64_t ok_b = 0;
  Run run;
  const Stopwatch watch;
  a.execute([&] {
    tbb::task_group players;
    players.run([&] {
      for (std::int64_t i = 0; i < n; ++i) {
        if (ball == 2 * i) ++ok_a;
        ++ball;
        ping.signal();
        pong.wait();
      }
    });
    players.run([&] {
      for (std::int64_t i = 0; i < n; ++i) {
        ping.wait();
        if (ball == 2 * i + 1) ++ok_b;
        ++ball;
        pong.signal();
      }
    });
    players.wait();
  });
  run.ns = watch.ns();
  run.ops = static_cast<double>(n);
  run.result = ok_a == ok_b ? ok_a : -1;
  return run;
}

// ---- 6. parallel_for -------------------------------------------------------------------------

Run parallel_for_sqrt(const Sizes& sizes) {
  tbb::task_arena& a = arena(2);
  std::vector<float> in;
  std::vector<float> out;
  prepare_sqrt(in, out, sizes.floats);
  const float* src = in.data();
  float* dst = out.data();
  Run run;
  const Stopwatch watch;
  a.execute([&] {
    tbb::parallel_for(tbb::blocked_range<std::int64_t>(0, sizes.floats),
                      [src, dst](const tbb::blocked_range<std::int64_t>& r) {
                        sqrt_range(src, dst, r.begin(), r.end());
                      });  // default grain 1, auto_partitioner
  });
  run.ns = watch.ns();
  run.result = count_correct_sqrt(in, out);
  return run;
}

// ---- 8. allocator calls per spawned task and per wait -----------------------------------------

enum class Phase { Spawn, Wait };

Run alloc_spawn_wait(Phase phase, const Sizes& sizes) {
  tbb::task_arena& a = arena(2);
  alloc::Counts spawn;
  alloc::Counts wait;
  std::int64_t rounds = 0;
  alloc::enable(true);
  a.execute([&] {
    const std::int64_t total = sizes.alloc_warmup_rounds + sizes.alloc_rounds;
    for (std::int64_t r = 0; r < total; ++r) {
      const alloc::Counts c0 = alloc::read();
      alloc::Counts c1;
      {
        tbb::task_group children;
        for (int i = 0; i < Sizes::kAllocChildren; ++i) children.run([] {});
        c1 = alloc::read();
        children.wait();
      }
      const alloc::Counts c2 = alloc::read();
      if (r < sizes.alloc_warmup_rounds) continue;
      ++rounds;
      spawn.add(c0, c1);
      wait.add(c1, c2);
    }
  });
  alloc::enable(false);
  Run run;
  if (phase == Phase::Spawn) {
    fill_alloc_run(run, {}, spawn, static_cast<double>(rounds * Sizes::kAllocChildren));
  } else {
    fill_alloc_run(run, {}, wait, static_cast<double>(rounds));
  }
  run.result = rounds;
  return run;
}

}  // namespace

void register_tbb(Registry& registry) {
  registry.system({"tbb",
                   "oneTBB",
                   std::to_string(TBB_VERSION_MAJOR) + "." + std::to_string(TBB_VERSION_MINOR),
                   "task_arena(2) joined by the main thread (1 TBB worker + main), "
                   "global_control max_allowed_parallelism 2; task_arena(1) for the one-worker "
                   "rows; ping-pong on tbb::task::suspend/resume",
                   "oneTBB's own: idle workers spin and yield for a while, then sleep "
                   "(not configurable)",
                   teardown,
                   {}});
  registry.add("fib", "tbb", fib);
  registry.add("skynet", "tbb", skynet);
  // TBB has no coroutine surface: its task_group fork-join is the baseline of rows 1c and 2c.
  registry.add("fib_co", "tbb", fib);
  registry.add("skynet_co", "tbb", skynet);
  registry.add("empty_jobs", "tbb", empty_jobs);
  // Row 3b is fiberjob's default setup; TBB's counterpart is its own default, as in row 3.
  registry.add("empty_jobs_plain", "tbb", empty_jobs);
  registry.add("pingpong_1w", "tbb", [](const Sizes& s) { return pingpong(1, s); });
  registry.add("pingpong_2w", "tbb", [](const Sizes& s) { return pingpong(2, s); });
  registry.add("parallel_for", "tbb", parallel_for_sqrt);
  registry.add("alloc_spawn", "tbb",
               [](const Sizes& s) { return alloc_spawn_wait(Phase::Spawn, s); });
  registry.add("alloc_wait", "tbb",
               [](const Sizes& s) { return alloc_spawn_wait(Phase::Wait, s); });
}

}  // namespace bench
