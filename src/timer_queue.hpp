#pragma once
// TimerQueue: the job system's one timer service. A binary min-heap of pointers to intrusive
// TimerEntry objects (ordered by deadline), with its capacity kept between uses, under a short
// spin lock; the earliest deadline is mirrored in an atomic that workers read with one relaxed
// load on every look for work (docs/decisions.md, "One timer heap per job system").

#include <atomic>
#include <cstdint>
#include <limits>
#include <vector>

#include "fiberjob/detail/stop_wake.hpp"
#include "fiberjob/detail/timer_entry.hpp"

namespace fiberjob::detail {

struct Worker;

class TimerQueue {
 public:
  /// next_deadline() when no timer is armed.
  static constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();
  /// Heap slots reserved up front (8 KiB of pointers); the heap grows by doubling past it and
  /// never shrinks, so arming timers allocates nothing in steady state.
  static constexpr std::size_t kInitialCapacity = 1024;

  TimerQueue();
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  /// What insert did.
  enum class Inserted : std::uint8_t {
    Later,     ///< armed, behind an earlier deadline
    Earliest,  ///< armed as the earliest deadline: wake a parked worker (notify_timer_armed)
    Stopped,   ///< not armed: the sleep's stop came first (its StopWake commit failed)
  };
  /// Arms `entry` (deadline_ns, node, unlink, object set; in no heap). A sleep passes its
  /// `entry.stop` as `stop`: committed under the heap's lock, the lock its stop callback's
  /// unlink (remove) takes. Any thread; never suspends.
  Inserted insert(TimerEntry& entry, StopWake* stop = nullptr) noexcept;
  /// Takes `entry` off the heap if it is still there (a sleep's stop callback: whoever takes
  /// the entry off the heap owns the wake). Returns whether it did. Any thread.
  bool remove(TimerEntry& entry) noexcept;
  /// Disarms `entry` after its waiter was woken: removes it from the heap if it is still
  /// there, else waits until the expirer that took it has finished with it. Afterwards the
  /// waiter may read entry.timed_out and reuse or destroy the entry. Any thread.
  void cancel(TimerEntry& entry) noexcept;
  /// Fires every entry whose deadline is at or before `now_ns`: a sleep's node is woken; a
  /// timed wait's node is unlinked from its primitive and woken only if the unlink won.
  /// Woken waiters are queued as wake_list queues them from `current` (a worker). Returns
  /// whether anything fired.
  bool expire(std::uint64_t now_ns, Worker* current) noexcept;

  /// The earliest armed deadline, or kNever. Relaxed: a hint for the look for work (pairs with
  /// nothing; the expiry takes the lock) and, read after the event count's prepare_wait fence,
  /// the park's timeout (the Dekker pair of insert's store and the notify's fence; see
  /// Scheduler::next_job).
  [[nodiscard]] std::uint64_t next_deadline() const noexcept {
    return next_deadline_.load(std::memory_order_relaxed);
  }
  /// True while some timer is armed (a hint, as next_deadline()).
  [[nodiscard]] bool armed() const noexcept { return next_deadline() != kNever; }

 private:
  void lock() noexcept;
  void unlock() noexcept;
  void sift_up(std::uint32_t index) noexcept;
  void sift_down(std::uint32_t index) noexcept;
  void place(TimerEntry* entry, std::uint32_t index) noexcept;
  /// Removes the entry at `index`, keeping the heap order. Under the lock.
  void remove_at(std::uint32_t index) noexcept;
  /// Stores the earliest deadline after a change of the heap. Under the lock.
  void publish_top() noexcept;

  /// 1 = a thread is inside the critical section (a few heap operations, never a wake or a
  /// suspension). Acquire exchange in lock(), release store in unlock(): they pair.
  std::atomic<std::uint32_t> locked_{0};
  /// The heap, under the lock. heap_[i]->heap_index == i.
  std::vector<TimerEntry*> heap_;
  /// heap_[0]->deadline_ns, or kNever when empty: written under the lock (relaxed; see
  /// next_deadline()), read lock-free by the workers.
  std::atomic<std::uint64_t> next_deadline_{kNever};
};

}  // namespace fiberjob::detail
