#pragma once
// BlockingPool: the threads that run blocking calls (this_fiber::blocking, ctx.blocking) for one
// job system — at most Config::max_blocking_threads, started when a call finds none idle.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "fiberjob/blocking.hpp"

namespace fiberjob::detail {

class Scheduler;
/// Wakes the workers that wait, at shutdown, for the blocking calls to end (scheduler.cpp).
void blocking_calls_done(Scheduler& scheduler) noexcept;

/// A FIFO of intrusive BlockingCalls under a mutex, and the threads that run them. A mutex and
/// a condition variable, not a lock-free list: its threads exist to block (the calls they run
/// do), and the queue is touched twice per call, which costs far less than the call.
class BlockingPool {
 public:
  BlockingPool(Scheduler& scheduler, std::uint32_t max_threads) noexcept
      : scheduler_(scheduler), max_threads_(max_threads) {}
  ~BlockingPool() { stop(); }
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  /// Counts a call about to be queued and makes sure a thread will run it: starts one when
  /// none is idle and fewer than the maximum exist. Errors: std::system_error when no thread
  /// exists and none can be started (nothing is counted then).
  void reserve();
  /// Undoes reserve() for a call that will not be queued after all.
  void unreserve() noexcept;
  /// Queues a reserved call (`object`, whose `pool` is set) with its waiter's `node`: a
  /// WaitLinker, run after the waiter stopped; short. Commits the call's armed stop side under
  /// the mutex first (StopWake::commit): when the job's stop came before, queues nothing,
  /// undoes the reservation and returns false (the waiter goes on and throws Cancelled);
  /// otherwise returns true.
  static bool link(void* object, WaitNode& node) noexcept;
  /// StopWake::unlink of a queued call (`object`): takes it off the FIFO under the mutex.
  /// \return true when it was still queued (the stop owns the wake; the call never runs);
  ///   false when a pool thread took it first (that thread runs it and wakes the waiter).
  static bool unlink_queued(void* object, WaitNode& node) noexcept;
  /// StopWake::hand_over of a call unlink_queued took: wakes the waiter, then uncounts the
  /// call as a pool thread does after a call ran (pending()).
  static void wake_unqueued(void* object, WaitNode& node) noexcept;
  /// Calls reserved and not yet finished (their waiters not yet woken). seq_cst: with the
  /// decrement after the wake and the idle event count's fences (a Dekker pair): a stopping
  /// worker either sees 0 here, or is parked when the last call ends and gets its notify.
  [[nodiscard]] std::uint32_t pending() const noexcept { return pending_.load(); }
  /// Stops and joins the threads (every call must have finished). Idempotent.
  void stop() noexcept;

 private:
  void thread_main() noexcept;

  Scheduler& scheduler_;
  const std::uint32_t max_threads_;
  std::mutex mutex_;
  std::condition_variable ready_;
  BlockingCall* head_ = nullptr;      // under mutex_
  BlockingCall* tail_ = nullptr;      // under mutex_
  std::uint32_t idle_ = 0;            // under mutex_: threads waiting for a call
  std::uint32_t queued_ = 0;          // under mutex_: reserved calls not yet taken by a thread
  bool stopping_ = false;             // under mutex_
  std::vector<std::thread> threads_;  // under mutex_ (grows), joined by stop()
  /// Reserved calls not yet finished (pending()). seq_cst, all of its operations: the
  /// increment in reserve(), the decrements in unreserve() and after a call's wake, and the
  /// load in pending() pair with the idle event count's seq_cst fences (src/event_count.hpp), a
  /// Dekker pair with a stopping worker's park.
  std::atomic<std::uint32_t> pending_{0};
};

}  // namespace fiberjob::detail
