// Boost.Fiber (Debian libboost-fiber-dev): fibers with Boost's default stack allocator, joined
// with fiber::join; events on boost::fibers::mutex + condition_variable.
//
// Two workers: the work_stealing scheduler on the main thread and one helper thread. Boost's
// work_stealing registers its schedulers in process-wide statics behind a one-shot barrier, so
// the pool can be built once per process: the first two-worker workload builds it and the
// teardown stops the helper. It is built with suspend = false (Boost's default): an idle thread
// polls for work. (With suspend = true an idle thread sleeps until a fiber is made ready *for
// it* from another thread, and a local spawn on the other thread does not wake it, so the
// second thread would take no part in spawn/wait workloads.) The other systems run between
// Boost.Fiber's runs (main.cpp interleaves them), so after each run the harness pauses the pool:
// the helper thread blocks on a std::condition_variable until the next two-worker run resumes
// it. The one-worker rows run on a fresh thread with Boost's default round_robin scheduler.

#include <boost/fiber/algo/work_stealing.hpp>
#include <boost/fiber/all.hpp>
#include <boost/version.hpp>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bench {
namespace {

namespace bf = boost::fibers;

/// Counts down completions of detached fibers; one waiter. Long-lived (owned by the pool), so
/// the last fiber may still be leaving `done()` when the waiter returns.
class WaitGroup {
 public:
  void add(std::int64_t n) {
    std::unique_lock<bf::mutex> lock(mutex_);
    left_.fetch_add(n, std::memory_order_relaxed);
    finished_ = false;
  }
  void done() {
    if (left_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      std::unique_lock<bf::mutex> lock(mutex_);
      finished_ = true;
      lock.unlock();
      cv_.notify_one();
    }
  }
  void wait() {
    std::unique_lock<bf::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return finished_; });
  }

 private:
  std::atomic<std::int64_t> left_{0};
  bf::mutex mutex_;
  bf::condition_variable cv_;
  bool finished_ = false;
};

/// The two-worker pool. Between its runs the harness pauses it (quiesce): the helper's main fiber
/// then blocks the helper *thread* on a std::condition_variable, so its dispatcher stops polling
/// and the other systems are measured on a quiet core. Every two-worker workload calls pool(),
/// which resumes the helper before its timed region.
class Pool {
 public:
  Pool() {
    helper_ = std::thread([this] {
      bf::use_scheduling_algorithm<bf::algo::work_stealing>(2, false);
      for (;;) {
        Command command = Command::None;
        {
          std::unique_lock<bf::mutex> lock(mutex_);
          // Only this fiber waits: the helper's dispatcher runs stolen fibers meanwhile.
          cv_.wait(lock, [this] { return command_ != Command::None; });
          command = command_;
          command_ = Command::None;
        }
        if (command == Command::Stop) return;
        std::unique_lock<std::mutex> lock(thread_mutex_);  // Pause: the whole thread sleeps
        blocked_ = true;
        thread_cv_.notify_all();
        thread_cv_.wait(lock, [this] { return !blocked_; });
        awake_ = true;
        thread_cv_.notify_all();
      }
    });
    bf::use_scheduling_algorithm<bf::algo::work_stealing>(2, false);  // main thread
  }
  ~Pool() {
    resume();
    send(Command::Stop);
    helper_.join();
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  /// Blocks the helper thread; returns once it sleeps. Main thread only.
  void pause() {
    if (paused_) return;
    send(Command::Pause);
    std::unique_lock<std::mutex> lock(thread_mutex_);
    thread_cv_.wait(lock, [this] { return blocked_; });
    paused_ = true;
  }
  /// Wakes the helper thread; returns once it runs its dispatcher again. Main thread only.
  void resume() {
    if (!paused_) return;
    std::unique_lock<std::mutex> lock(thread_mutex_);
    blocked_ = false;
    awake_ = false;
    thread_cv_.notify_all();
    thread_cv_.wait(lock, [this] { return awake_; });
    paused_ = false;
  }

  WaitGroup& wait_group() { return wait_group_; }

 private:
  enum class Command { None, Pause, Stop };
  void send(Command command) {
    {
      std::unique_lock<bf::mutex> lock(mutex_);
      command_ = command;
    }
    cv_.notify_all();
  }

  std::thread helper_;
  bf::mutex mutex_;  // guards command_ (fiber side: the helper's main fiber waits on cv_)
  bf::condition_variable cv_;
  Command command_ = Command::None;
  std::mutex thread_mutex_;  // guards blocked_ and awake_ (thread side: the paused helper)
  std::condition_variable thread_cv_;
  bool blocked_ = false;  // the helper thread sleeps on thread_cv_
  bool awake_ = false;    // the helper left thread_cv_ after a resume
  bool paused_ = false;   // main thread's view: pause() returned and resume() has not
  WaitGroup wait_group_;
};

bool g_pool_stopped = false;
std::unique_ptr<Pool>& pool_ptr() {
  static std::unique_ptr<Pool> pool;
  return pool;
}
Pool& pool() {
  std::unique_ptr<Pool>& p = pool_ptr();
  if (!p) {
    if (g_pool_stopped) {
      throw CheckFailed("Boost.Fiber's work_stealing pool can be built once per process");
    }
    p = std::make_unique<Pool>();
  }
  p->resume();
  return *p;
}
void quiesce() {
  if (pool_ptr()) pool_ptr()->pause();
}
void teardown() {
  if (pool_ptr()) g_pool_stopped = true;
  pool_ptr().reset();
}

/// Runs `body` on a fresh thread with Boost.Fiber's default (round_robin) scheduler.
template <class Body>
Run on_one_worker(Body body) {
  Run run;
  std::thread thread([&] { run = body(); });
  thread.join();
  return run;
}

// ---- 1. fib ----------------------------------------------------------------------------------

std::int64_t fib_bf(int n) {
  if (n < 2) return n;
  std::int64_t a = 0;
  std::int64_t b = 0;
  bf::fiber first([n, &a] { a = fib_bf(n - 1); });
  bf::fiber second([n, &b] { b = fib_bf(n - 2); });
  first.join();
  second.join();
  return a + b;
}

Run fib(const Sizes& sizes) {
  pool();
  Run run;
  const Stopwatch watch;
  bf::fiber root([&] { run.result = fib_bf(sizes.fib_n); });
  root.join();
  run.ns = watch.ns();
  return run;
}

// ---- 2. skynet -------------------------------------------------------------------------------

std::int64_t skynet_bf(std::int64_t num, std::int64_t size) {
  if (size == 1) return num;
  std::array<std::int64_t, 10> sums{};
  std::array<bf::fiber, 10> children;
  const std::int64_t child = size / 10;
  for (int i = 0; i < 10; ++i) {
    children[static_cast<std::size_t>(i)] = bf::fiber([num, child, i, &sums] {
      sums[static_cast<std::size_t>(i)] = skynet_bf(num + i * child, child);
    });
  }
  for (bf::fiber& f : children) f.join();
  std::int64_t sum = 0;
  for (std::int64_t s : sums) sum += s;
  return sum;
}

Run skynet(const Sizes& sizes) {
  pool();
  Run run;
  const std::int64_t leaves = skynet_leaves(sizes.skynet_depth);
  const Stopwatch watch;
  bf::fiber root([&] { run.result = skynet_bf(0, leaves); });
  root.join();
  run.ns = watch.ns();
  return run;
}

// ---- 3. empty jobs: detached fibers launched from the main thread, one wait for all ---------

Run empty_jobs(const Sizes& sizes) {
  WaitGroup& group = pool().wait_group();
  Run run;
  const Stopwatch watch;
  group.add(sizes.empty_jobs);
  for (std::int64_t i = 0; i < sizes.empty_jobs; ++i) {
    // The body is empty; counting the completion is what fiberjob's counter does for a job.
    bf::fiber([&group] { group.done(); }).detach();
  }
  group.wait();
  run.ns = watch.ns();
  run.ops = static_cast<double>(sizes.empty_jobs);
  run.result = sizes.empty_jobs;  // the wait returned: all empty_jobs completions were counted
  return run;
}

// ---- 4. yield: two fibers on one thread yielding alternately --------------------------------

Run yield(const Sizes& sizes) {
  return on_one_worker([&sizes] {
    const std::int64_t per_job = sizes.yields / 2;
    int last = 0;
    std::int64_t alternations = 0;
    std::int64_t yields = 0;
    Run run;
    const Stopwatch watch;
    auto player = [&](int me) {
      for (std::int64_t i = 0; i < per_job; ++i) {
        last = me;
        boost::this_fiber::yield();
        ++yields;
        if (last != me) ++alternations;
      }
    };
    bf::fiber a([&] { player(1); });
    bf::fiber b([&] { player(2); });
    a.join();
    b.join();
    run.ns = watch.ns();
    run.ops = static_cast<double>(yields);
    run.result = alternations;
    return run;
  });
}

// ---- 5. wait/wake ping-pong ------------------------------------------------------------------

/// A one-shot event (fiber mutex + condition variable): the Boost.Fiber counterpart of an
/// armed counter.
class Event {
 public:
  void signal() {
    {
      std::unique_lock<bf::mutex> lock(mutex_);
      set_ = true;
    }
    cv_.notify_one();
  }
  void wait() {
    std::unique_lock<bf::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return set_; });
    set_ = false;
  }

 private:
  bf::mutex mutex_;
  bf::condition_variable cv_;
  bool set_ = false;
};

/// Row 10a: two fibers on the work_stealing pool, each locking one fibers::mutex half of
/// `mutex_ops` times (a shared increment inside).
Run mutex_contended(const Sizes& sizes) {
  bf::mutex mutex;
  std::int64_t shared = 0;
  const std::int64_t per_fiber = sizes.mutex_ops / 2;
  Run run;
  const Stopwatch watch;
  auto body = [&] {
    for (std::int64_t i = 0; i < per_fiber; ++i) {
      std::lock_guard<bf::mutex> lock(mutex);
      ++shared;
    }
  };
  bf::fiber a(body);
  bf::fiber b(body);
  a.join();
  b.join();
  run.ns = watch.ns();
  run.ops = static_cast<double>(2 * per_fiber);
  run.result = shared;
  return run;
}

Run pingpong_body(const Sizes& sizes) {
  Event ping;
  Event pong;
  const std::int64_t n = sizes.round_trips;
  std::int64_t ball = 0;
  std::int64_t ok_a = 0;
  std::int64_t ok_b = 0;
  Run run;
  const Stopwatch watch;
  bf::fiber a([&] {
    for (std::int64_t i = 0; i < n; ++i) {
      if (ball == 2 * i) ++ok_a;
      ++ball;
      ping.signal();
      pong.wait();
    }
  });
  bf::fiber b([&] {
    for (std::int64_t i = 0; i < n; ++i) {
      ping.wait();
      if (ball == 2 * i + 1) ++ok_b;
      ++ball;
      pong.signal();
    }
  });
  a.join();
  b.join();
  run.ns = watch.ns();
  run.ops = static_cast<double>(n);
  run.result = ok_a == ok_b ? ok_a : -1;
  return run;
}

// ---- 8. allocator calls per spawned fiber, per wait (join of the round's fibers), per yield --

enum class Phase { Spawn, Wait };

Run alloc_spawn_wait(Phase phase, const Sizes& sizes) {
  pool();
  alloc::Counts spawn;
  alloc::Counts wait;
  std::int64_t rounds = 0;
  alloc::enable(true);
  bf::fiber root([&] {
    const std::int64_t total = sizes.alloc_warmup_rounds + sizes.alloc_rounds;
    for (std::int64_t r = 0; r < total; ++r) {
      const alloc::Counts c0 = alloc::read();
      alloc::Counts c1;
      {
        std::array<bf::fiber, Sizes::kAllocChildren> children;
        for (bf::fiber& f : children) f = bf::fiber([] {});
        c1 = alloc::read();
        for (bf::fiber& f : children) f.join();
      }
      const alloc::Counts c2 = alloc::read();
      if (r < sizes.alloc_warmup_rounds) continue;
      ++rounds;
      spawn.add(c0, c1);
      wait.add(c1, c2);
    }
  });
  root.join();
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

Run alloc_yield(const Sizes& sizes) {
  return on_one_worker([&sizes] {
    const std::int64_t per_job = sizes.alloc_warmup_rounds + sizes.alloc_rounds;
    std::int64_t yields = 0;
    std::int64_t counted_from = 0;
    std::int64_t counted = 0;
    alloc::Counts start;
    alloc::Counts end;
    alloc::enable(true);
    auto player = [&](int me) {
      for (std::int64_t i = 0; i < per_job; ++i) {
        if (me == 1 && i == sizes.alloc_warmup_rounds) {
          start = alloc::read();
          counted_from = yields;
        }
        boost::this_fiber::yield();
        ++yields;
        if (me == 1 && i + 1 == per_job) {
          end = alloc::read();
          counted = yields - counted_from;
        }
      }
    };
    bf::fiber a([&] { player(1); });
    bf::fiber b([&] { player(2); });
    a.join();
    b.join();
    alloc::enable(false);
    Run run;
    fill_alloc_run(run, start, end, static_cast<double>(counted));
    run.result = counted >= 2 * sizes.alloc_rounds - 1 ? sizes.alloc_rounds : -1;
    return run;
  });
}

}  // namespace

void register_boost_fiber(Registry& registry) {
  registry.system(
      {"boost_fiber", "Boost.Fiber",
       std::to_string(BOOST_VERSION / 100000) + "." + std::to_string(BOOST_VERSION / 100 % 1000),
       "work_stealing(2) on the main thread + 1 helper thread, default stacks "
       "(fixedsize_stack, 128 KiB, malloc); one-worker rows: round_robin on one "
       "thread; events: fibers::mutex + condition_variable",
       "work_stealing suspend = false (Boost's default): idle threads poll for "
       "work (busy); between its runs the harness blocks the helper thread",
       teardown, quiesce});
  // The one-worker rows run first (main.cpp orders them so), before the pool exists; later the
  // pool is paused during them anyway (quiesce).
  registry.add("yield", "boost_fiber", yield);
  registry.add("pingpong_1w", "boost_fiber",
               [](const Sizes& s) { return on_one_worker([&s] { return pingpong_body(s); }); });
  registry.add("alloc_yield", "boost_fiber", alloc_yield);
  registry.add("fib", "boost_fiber", fib);
  registry.add("skynet", "boost_fiber", skynet);
  registry.add("empty_jobs", "boost_fiber", empty_jobs);
  registry.add("empty_jobs_plain", "boost_fiber", empty_jobs);  // as row 3: its default setup
  registry.add("pingpong_2w", "boost_fiber", [](const Sizes& s) {
    pool();
    return pingpong_body(s);
  });
  registry.add("event_pingpong_2w", "boost_fiber", [](const Sizes& s) {
    pool();
    return pingpong_body(s);
  });
  registry.add("mutex_2w", "boost_fiber", [](const Sizes& s) {
    pool();
    return mutex_contended(s);
  });
  registry.add("alloc_spawn", "boost_fiber",
               [](const Sizes& s) { return alloc_spawn_wait(Phase::Spawn, s); });
  registry.add("alloc_wait", "boost_fiber",
               [](const Sizes& s) { return alloc_spawn_wait(Phase::Wait, s); });
}

}  // namespace bench
