// Plain std::thread where it applies: parallel_for as the static two-thread split. The calling
// thread runs the first half, one helper std::thread the second; the helper waits for work with
// C++20 std::atomic::wait (a futex), as a minimal persistent pool of one would. It is created
// and given one untimed round before the timed one, like the pools' long-lived, parked workers:
// with the threads created inside the timed region, the split measured thread start-up (on the
// VM we measure on the second thread often started its half milliseconds late). Every system
// runs the same kernel (sqrt_range).

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bench {
namespace {

class Split {
 public:
  Split() : helper_([this] { loop(); }) {}
  ~Split() {
    stop_.store(true, std::memory_order_relaxed);
    go_.fetch_add(1, std::memory_order_release);
    go_.notify_one();
    helper_.join();
  }
  Split(const Split&) = delete;
  Split& operator=(const Split&) = delete;

  /// sqrt_range over [0, n): [0, n/2) here, [n/2, n) on the helper. Returns when both are done.
  void run(const float* src, float* dst, std::int64_t n) {
    src_ = src;
    dst_ = dst;
    lo_ = n / 2;
    hi_ = n;
    const std::uint32_t round = go_.fetch_add(1, std::memory_order_release) + 1;
    go_.notify_one();
    caller_cpu_ = sched_getcpu();
    sqrt_range(src, dst, 0, n / 2);
    for (std::uint32_t d = done_.load(std::memory_order_acquire); d != round;
         d = done_.load(std::memory_order_acquire)) {
      done_.wait(d, std::memory_order_acquire);
    }
  }
  [[nodiscard]] bool same_cpu() const { return caller_cpu_ == helper_cpu_; }

 private:
  void loop() {
    std::uint32_t seen = 0;
    for (;;) {
      go_.wait(seen, std::memory_order_acquire);
      const std::uint32_t round = go_.load(std::memory_order_acquire);
      if (stop_.load(std::memory_order_relaxed)) return;
      helper_cpu_ = sched_getcpu();
      sqrt_range(src_, dst_, lo_, hi_);
      seen = round;
      done_.store(round, std::memory_order_release);
      done_.notify_one();
    }
  }

  // Written by the caller before the release increment of go_, read by the helper after it.
  const float* src_ = nullptr;
  float* dst_ = nullptr;
  std::int64_t lo_ = 0;
  std::int64_t hi_ = 0;
  int caller_cpu_ = -1;
  int helper_cpu_ = -2;  // written before the release store of done_
  std::atomic<std::uint32_t> go_{0};
  std::atomic<std::uint32_t> done_{0};
  std::atomic<bool> stop_{false};
  std::thread helper_;  // last: started once the members above exist
};

Run parallel_for_split(const Sizes& sizes) {
  std::vector<float> in;
  std::vector<float> out;
  prepare_sqrt(in, out, sizes.floats);
  Split split;
  split.run(in.data(), out.data(), sizes.floats);  // untimed: the helper has run and slept once
  std::fill(out.begin(), out.end(), -1.0f);
  Run run;
  const Stopwatch watch;
  split.run(in.data(), out.data(), sizes.floats);
  run.ns = watch.ns();
  run.result = count_correct_sqrt(in, out);
  run.extra["same_cpu"] = split.same_cpu() ? 1 : 0;  // both halves on one CPU (placement)
  return run;
}

/// Row 10a: two std::threads (the caller and one more), each locking one std::mutex half of
/// `mutex_ops` times (a shared increment inside).
Run mutex_contended(const Sizes& sizes) {
  std::mutex mutex;
  std::int64_t shared = 0;
  const std::int64_t per_thread = sizes.mutex_ops / 2;
  auto body = [&] {
    for (std::int64_t i = 0; i < per_thread; ++i) {
      const std::lock_guard lock(mutex);
      ++shared;
    }
  };
  Run run;
  const Stopwatch watch;
  std::thread other(body);
  body();
  other.join();
  run.ns = watch.ns();
  run.ops = static_cast<double>(2 * per_thread);
  run.result = shared;
  return run;
}

}  // namespace

void register_std_thread(Registry& registry) {
  registry.system({"std_thread",
                   "std::thread split",
                   "libstdc++",
                   "the calling thread + one helper std::thread, one half of the range each; the "
                   "helper waits on std::atomic::wait and is warmed by one untimed round",
                   "helper: std::atomic::wait (libstdc++: brief spin, then futex)",
                   {},
                   {}});
  registry.add("parallel_for", "std_thread", parallel_for_split);
  registry.add("mutex_2w", "std_thread", mutex_contended);
}

}  // namespace bench
