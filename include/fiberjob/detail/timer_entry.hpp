#pragma once
/// \file
/// The intrusive entry of the job system's timer service. Internal: users never touch it.

#include <atomic>
#include <cstdint>

#include "fiberjob/detail/wait_node.hpp"

namespace fiberjob::detail {

class Scheduler;
struct StopWake;

/// One pending deadline: a sleep, or the timeout of a timed wait. Lives where the waiter lives
/// (the sleeping fiber's stack, the awaiter in a coroutine frame), so arming a timer never
/// allocates; the job system's timer heap holds a pointer to it (src/timer_queue.hpp).
///
/// Ownership: from insert until an expirer takes it off the heap (or the waiter's cancel does)
/// the entry belongs to the heap, guarded by the heap's lock. An expirer that took it sets
/// `firing` under that lock and clears it (release) after its last touch of the entry; the
/// waiter's cancel waits for that (acquire), so the entry is never reused under an expirer.
struct TimerEntry {
  /// heap_index while the entry is in no heap.
  static constexpr std::uint32_t kNotQueued = 0xFFFFFFFFu;

  /// When the timer fires, in steady_clock nanoseconds since its epoch (CLOCK_MONOTONIC).
  std::uint64_t deadline_ns = 0;
  /// The job system whose timer heap holds the entry (nullptr: a plain thread's timed wait,
  /// which waits on its futex with a timeout instead of arming a timer).
  Scheduler* scheduler = nullptr;
  /// The waiter's node: woken by the expirer when the timer wins (a sleep always does).
  WaitNode* node = nullptr;
  /// A timed wait: removes `node` from the primitive `object` waits on, under that primitive's
  /// lock; true when it did (the timer then owns the wake), false when a set, signal or unlock
  /// took the node first (that one wakes it). nullptr for a sleep: nothing to remove.
  bool (*unlink)(void* object, WaitNode& node) noexcept = nullptr;
  void* object = nullptr;
  /// The stop wake of a sleep (committed under the heap's lock by insert) or of a timed Event
  /// wait (committed under the event's lock); nullptr: none. A timed Counter wait keeps its
  /// own in its ValueWaiter.
  StopWake* stop = nullptr;
  /// Set by the expirer before it wakes the waiter, read by the waiter after cancel: the
  /// timer won (a timed wait returns false).
  bool timed_out = false;
  /// Position in the heap, or kNotQueued. Under the heap's lock only.
  std::uint32_t heap_index = kNotQueued;
  /// 1 from the moment an expirer takes the entry off the heap (under the heap's lock) until
  /// its last touch of the entry. Cleared with release, pairing with the waiter's acquire load
  /// in TimerQueue::cancel.
  std::atomic<std::uint32_t> firing{0};
  /// Link of the expirer's chain of fired entries (the expirer's own; no lock needed).
  TimerEntry* next_fired = nullptr;
};

}  // namespace fiberjob::detail
