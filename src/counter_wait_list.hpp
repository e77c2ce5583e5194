#pragma once
// CounterWaitList: the counter's wait-list protocol (lock-free intrusive Treiber stack).
// Memory orders and their pairings: docs/memory_ordering.md.

#include <cstdint>
#include <exception>

#include "fiberjob/counter.hpp"

namespace fiberjob::detail {

struct Worker;

/// The counter's wait list and the state around it (the count's waking sentinel, value waiters,
/// the captured exception): the operations the library runs on a Counter's private state.
/// Static functions only; a friend of Counter.
struct CounterWaitList {
  /// Sentinel base of the "final signaller is draining" state (see Counter::value_).
  static constexpr std::int64_t kWaking = -(std::int64_t{1} << 62);

  [[nodiscard]] static bool is_waking(std::int64_t value) noexcept {
    return value < -(std::int64_t{1} << 61);
  }

  /// Wait-for-value flag bits of Counter::value_ (see there) and the count below them.
  static constexpr std::int64_t kValueWaiters = std::int64_t{1} << 59;
  static constexpr std::int64_t kValueLocked = std::int64_t{1} << 60;
  static constexpr std::int64_t kCountMask = kValueWaiters - 1;
  /// True when a value's flag bits are set (a settled or waking value otherwise never is).
  [[nodiscard]] static bool has_value_flags(std::int64_t value) noexcept {
    return value >= kValueWaiters;
  }
  /// signal() when value waiters exist (counter_value_wait.cpp): the same update, made while
  /// owning the value-waiter list, waking the value waiters it satisfies.
  static void signal_value_waiters(Counter& counter, Worker* current, std::int64_t units) noexcept;
  /// The WaitLinker of a wait for a value: `object` is the detail::ValueWaiter.
  static bool link_value_waiter(void* object, WaitNode& node) noexcept;
  /// TimerEntry::unlink of a timed wait on the counter: removes the ValueWaiter `object` from
  /// the value-waiter list if a signal has not taken it yet (timer.cpp).
  static bool unlink_value_waiter(void* object, WaitNode& node) noexcept;

  /// ~Counter's slow path, for a counter whose raw count is not zero or that has waiters
  /// linked (or, in debug builds, a link in progress): joins the units still pending
  /// (join_pending), then aborts with a message on waiters still linked or linking, or on a
  /// count still not zero. Never throws; may suspend (the join).
  [[gnu::cold, gnu::noinline]] static void destroy_busy(Counter& counter) noexcept;

  /// The raw count, sentinel included (diagnostics). Relaxed: a snapshot.
  static std::int64_t raw_value(const Counter& counter) noexcept {
    return counter.value_.load(std::memory_order_relaxed);
  }

  /// Tests and diagnostics: true when a waiter is on one of the counter's lists and its linker
  /// is done with the counter (the wait-list head's `linking` is 0, or a value waiter is
  /// linked and the list's lock is free). Reads the head node: call it only while nothing can
  /// drain the list (the caller holds a unit of the count). Acquire: pairs with the push CAS
  /// and the release stores of `linking` (link_chunk) and of the value list's lock.
  static bool has_linked_waiter(const Counter& counter) noexcept {
    const WaitNode* head = counter.waiters_.load(std::memory_order_acquire);
    if (head != nullptr && head->linking.load(std::memory_order_acquire) == 0) return true;
    const std::int64_t value = counter.value_.load(std::memory_order_acquire);
    return has_value_flags(value) && (value & kValueLocked) == 0;
  }

  /// The count once no drain is in progress (spins the few ns a drain takes). Acquire.
  static std::int64_t load_settled(const Counter& counter) noexcept {
    // acquire: pairs with the release of the final signaller's fetch_sub(kWaking) (and, through
    // the release sequence, with every signaller's CAS): seeing 0 means seeing all job writes.
    const std::int64_t value = counter.value_.load(std::memory_order_acquire);
    return is_waking(value) ? settle(counter) : value;  // inline: the drain is rarely seen
  }
  /// load_settled's slow path: spins (then yields) until the drain in progress is over.
  static std::int64_t settle(const Counter& counter) noexcept;

  /// Links `node` into the wait list, then re-checks the count; if it is zero, drains the list
  /// itself and wakes everything in it (`node` included). Called after the waiter stopped
  /// running (fiber waiters: by the next fiber, see fiber_switch.cpp).
  /// `current` is the calling thread's worker or nullptr.
  static void link(Counter& counter, WaitNode& node, Worker* current) noexcept;

  /// link() for `count` nodes at once, in one CAS: `first` … `last`, joined through `next` and
  /// equally through `chunk_next` (`first` becomes the list's head), each with `linking`
  /// already 1, its waiter already suspended and its link counted by note_linker. The waits
  /// combined per chunk (Worker::deferred_link_counter) go through here.
  static void link_chunk(Counter& counter, WaitNode& first, WaitNode& last, std::int64_t count,
                         Worker* current) noexcept;

  /// Debug builds (no NDEBUG): counts one link of a waiter into `counter` that has begun but
  /// not finished (Counter::linkers_): a wait held for a combined link counts from when it is
  /// held. ~Counter and add() report a counter destroyed or reused under such a wait, which
  /// would otherwise be a silent use after free. link_chunk takes the count back.
  static void note_linker(Counter& counter) noexcept {
#if !defined(NDEBUG)
    // relaxed: only has to be up before the push, which the push CAS (release) orders; the
    // decrement in link_chunk is release.
    counter.linkers_.fetch_add(1, std::memory_order_relaxed);
#else
    (void)counter;
#endif
  }

  /// A woken waiter calls this before it returns: waits until the linker of `node` has made its
  /// last access to the counter (almost always already the case, so that check is inline).
  static void wait_for_linker(const WaitNode& node) noexcept {
    // acquire: pairs with the release stores of `linking` in link(): the linker's accesses to
    // the counter happen before the waiter goes on (and perhaps destroys the counter).
    if (node.linking.load(std::memory_order_acquire) != 0) [[unlikely]] {
      spin_until_linked(node);
    }
  }
  /// wait_for_linker's slow path: spins (then yields) until the linker is done.
  static void spin_until_linked(const WaitNode& node) noexcept;

  /// `units` (>= 1) jobs (or manual units) done, in one atomic update; the signal reaching zero
  /// drains and wakes all waiters.
  static void signal(Counter& counter, Worker* current, std::int64_t units = 1) noexcept;

  /// Keeps the first exception of a round (while no exception is held), counts the others.
  static void capture(Counter& counter, std::exception_ptr error) noexcept;

  /// First add of a new round: forgets an exception that a wait already rethrew.
  static void forget_delivered_error(Counter& counter) noexcept;

  /// After a completed wait: rethrows the kept exception, if any. The usual "none" is one
  /// inline load.
  static void rethrow_if_error(Counter& counter) {
    // acquire: pairs with the release store that completed the capture.
    const std::uint32_t state = counter.error_state_.load(std::memory_order_acquire);
    if (state == Counter::kErrorCaptured || state == Counter::kErrorDelivered) [[unlikely]] {
      rethrow_error(counter);
    }
  }
  /// The drainer's look at the exception state, made once per drain that has waiters, before
  /// its last touch of the counter: true when the counter may keep an exception (any state
  /// but kNoError; kErrorWriting only under a misuse, and then the waiter's own acquire load
  /// decides). A waiter the drain wakes reads the counter again only when this was true
  /// (WaitNode::error_kept), so the counter may die right after its last signal.
  /// Relaxed: every signal of the round is a read-modify-write of `value_` and the drain's
  /// acq_rel CAS (or, for a linker's drain, its acquire load of the settled 0, which reads
  /// the final signaller's release restore) synchronises with each of them, so every capture
  /// of the round (its release store of kErrorCaptured is sequenced before its job's signal)
  /// happens before this load, which therefore sees it (write-read coherence). The waiter
  /// that is told to look re-loads the state with acquire (rethrow_if_error) to read error_.
  [[nodiscard]] static bool may_keep_error(const Counter& counter) noexcept {
    return counter.error_state_.load(std::memory_order_relaxed) != Counter::kNoError;
  }

  /// A drain's list whose counter keeps an exception (may_keep_error): claims its stoppable
  /// waits as the wake would (a tombstone is cut out, a claimed wait is replaced by its
  /// waiter's own node), then sets WaitNode::error_kept in every node left. The drainer owns
  /// every node (none is runnable yet). O(waiters), only when an exception is kept.
  /// \return the list to wake (nullptr: tombstones only).
  static WaitNode* note_error_kept(WaitNode* head) noexcept;

  /// The end of signal()'s drain when the counter may keep an exception: restores the count
  /// (the last touch of the counter), flags the drained waiters (note_error_kept) and wakes
  /// them. Out of line and cold: the usual signal then needs no frame.
  [[gnu::cold, gnu::noinline]] static void finish_drain_keeping_error(Counter& counter,
                                                                      WaitNode* drained,
                                                                      Worker* current) noexcept;

  /// A woken waiter's look at its own node: true when the drain that woke it saw an exception
  /// kept (then it must rethrow_if_error); clears the flag for the node's next wait. The usual
  /// "none" is one load of a byte of the node, no store.
  [[nodiscard]] static bool take_error_kept(WaitNode& node) noexcept {
    if (node.error_kept == 0) [[likely]]
      return false;
    node.error_kept = 0;
    return true;
  }

  /// After a completed wait: the kept exception (nullptr if none), marked as delivered as a
  /// rethrow would. Never throws nor allocates (copying an exception_ptr counts a reference).
  static std::exception_ptr take_error(Counter& counter) noexcept;
  /// rethrow_if_error's slow path, once an exception is known to be kept: rethrows it.
  [[noreturn]] static void rethrow_error(Counter& counter);

  /// The job system that last queued a job on the counter (nullptr if none).
  static Scheduler* scheduler_hint(const Counter& counter) noexcept {
    return counter.scheduler_hint_.load(std::memory_order_relaxed);  // relaxed: a hint
  }
  static void set_scheduler_hint(Counter& counter, Scheduler* scheduler) noexcept {
    // relaxed: a hint; load first so the common case does not dirty the line.
    if (counter.scheduler_hint_.load(std::memory_order_relaxed) != scheduler) {
      counter.scheduler_hint_.store(scheduler, std::memory_order_relaxed);
    }
  }

  /// Blocks a plain thread until the counter is zero (futex on a node on this stack).
  /// \return whether the caller must look at the counter's exception (rethrow_if_error):
  ///   true when the count was zero already (nothing linked: the caller's own call keeps the
  ///   counter alive) or the drain that woke it saw an exception kept; false otherwise, and
  ///   then the counter may already be destroyed.
  [[nodiscard]] static bool wait_on_thread(Counter& counter) noexcept;
};

/// ~Counter with units pending: waits for them (counter_join.cpp) — stackful on our fibers,
/// parking off them — or aborts with a message where waiting is impossible.
void join_pending(Counter& counter) noexcept;

/// Makes every node of a drained list runnable. Reads each node's `next` before waking it.
void wake_list(WaitNode* head, Worker* current) noexcept;

/// A drainer met `node`, a Kind::Stoppable node of a drained list (stop_wake.cpp), after it
/// read the node's `next`: claims the wait (StopWake kLinked -> kWoken) and drops the list's
/// reference to its block. \return the waiter's own node, to make runnable as any drained
/// node; nullptr for a tombstone (the stop claimed the wait and woke the waiter). `node` may
/// be reused once this returns.
WaitNode* take_stoppable(WaitNode& node) noexcept;

}  // namespace fiberjob::detail
