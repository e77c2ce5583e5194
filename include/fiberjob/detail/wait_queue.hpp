#pragma once
/// \file
/// The wait queue under `Event`, `Mutex`, `ConditionVariable`, `Semaphore` and the counter's
/// wait-for-value: a FIFO of intrusive `WaitNode`s guarded by a one-bit spin lock that shares
/// its atomic word with the primitive's own state. Internal: users never touch it.

#include <atomic>
#include <coroutine>
#include <cstdint>

#include "fiberjob/detail/die.hpp"
#include "fiberjob/detail/wait_node.hpp"

namespace fiberjob::detail {

class Scheduler;

/// How a waiter joins a primitive once it has stopped running: `link(object, node)` either
/// links `node` (returns true; a later wake makes the waiter runnable) or finds the condition
/// already met and links nothing (returns false; the waiter goes on at once). It runs on the
/// thread that suspends the waiter — for a fiber, on the next fiber, after the waiting stack
/// stopped (fiber_switch.cpp) — and must be short and never suspend.
struct WaitLinker {
  bool (*link)(void* object, WaitNode& node) noexcept = nullptr;
  void* object = nullptr;
  /// What `object` is ("Mutex", "Event", ...), for the reports that name what a stuck waiter
  /// waits on (write_diagnostics, the shutdown report). A string literal.
  const char* what = nullptr;
  /// The primitive the reports name when `object` is the wait's own state (a StoppableWait, a
  /// timer entry, a ValueWaiter); nullptr: `object` itself. The one way to name it: every wait
  /// (stackful, blocking, coroutine) reports `reported()`.
  const void* report_as = nullptr;

  /// What the reports name as waited on: `report_as`, or `object` when that is nullptr.
  [[nodiscard]] const void* reported() const noexcept {
    return report_as != nullptr ? report_as : object;
  }
};

/// A FIFO of waiters and a spin lock in one word. Word states: bit 0 (`kLocked`) = a thread
/// is inside the critical section (a few pointer operations; never held across a suspension
/// or a wake); the other bits are the owning primitive's state (an event's "set", a mutex's
/// "held", a semaphore's count), readable without the lock and changed either under the lock
/// or by a lock-free compare-exchange on an unlocked word (`try_update`).
///
/// `unlock(state)` publishes the new state and leaves the section in one release store, which
/// is the last access of the critical section's owner to the primitive: a waiter that sees the
/// new state (or is woken after it) may destroy the primitive at once. Wakes therefore happen
/// after the unlock, from a detached chain of nodes.
///
/// Thread-safety: every member may be called from any thread; the list members only between
/// lock() and unlock(). Algorithm: test-and-test-and-set spin lock (spins, then yields to the
/// OS scheduler: the holder may be preempted), as Boost.Fiber's and marl's primitives guard
/// their waiter lists with a short lock.
class WaitQueue {
 public:
  static constexpr std::uint32_t kLocked = 1;

  WaitQueue() noexcept = default;
  explicit WaitQueue(std::uint32_t state) noexcept : word_(state & ~kLocked) {}
  WaitQueue(const WaitQueue&) = delete;
  WaitQueue& operator=(const WaitQueue&) = delete;

  /// Enters the critical section; returns the state (the word without kLocked).
  std::uint32_t lock() noexcept;
  /// Leaves the critical section, publishing `state` (kLocked cleared) with release.
  void unlock(std::uint32_t state) noexcept;
  /// The state now (acquire: pairs with unlock's release store and try_update's release).
  [[nodiscard]] std::uint32_t state() const noexcept {
    return word_.load(std::memory_order_acquire) & ~kLocked;
  }
  /// Lock-free fast path: replaces state `expected` by `desired` when the word is unlocked
  /// and holds exactly `expected`. acq_rel: pairs with unlock's release and with other
  /// try_updates. Returns whether it did.
  bool try_update(std::uint32_t expected, std::uint32_t desired) noexcept {
    return word_.compare_exchange_strong(expected, desired, std::memory_order_acq_rel,
                                         std::memory_order_relaxed);
  }

  /// Takes the lock, unlinks `node` if it is queued, and leaves the section, clearing the
  /// state bits `clear_if_empty` when the queue is left empty. Returns whether it was queued
  /// (a stop's or timeout's unlink: whoever removes the node owns its wake).
  bool withdraw(WaitNode& node, std::uint32_t clear_if_empty = 0) noexcept {
    const std::uint32_t state = lock();
    const bool removed = remove(node);
    unlock(empty() ? state & ~clear_if_empty : state);
    return removed;
  }

  // Under the lock only.
  void push_back(WaitNode& node) noexcept;
  WaitNode* pop_front() noexcept;
  /// Unlinks `node` if it is queued (O(position)); returns whether it was (a timed wait's
  /// timeout: whoever removes the node owns its wake).
  bool remove(WaitNode& node) noexcept;
  /// Detaches every waiter: a chain through WaitNode::next, first to last (nullptr if none).
  WaitNode* take_all() noexcept;
  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  /// The number of waiters, counting no further than `limit` (O(min(size, limit))).
  [[nodiscard]] std::int64_t size_up_to(std::int64_t limit) const noexcept;

 private:
  /// Bit 0 (kLocked) = a thread is in the critical section; the other bits = the primitive's
  /// state. Written by lock() (acquire CAS), unlock() (release store, pairs with lock()'s
  /// acquire and with state()'s acquire load) and try_update() (acq_rel CAS).
  /// Ledger: docs/memory_ordering.md, "Wait queue".
  std::atomic<std::uint32_t> word_{0};
  WaitNode* head_ = nullptr;
  WaitNode* tail_ = nullptr;
};

/// Makes every waiter of a detached chain runnable (the counter's wake_list: fibers go to a
/// worker's queue, threads' futexes are woken, coroutines are queued or resumed). Reads each
/// node's `next` before waking it.
void wake_chain(WaitNode* head) noexcept;

/// Suspends the calling plain code until the node that `linker` links is woken: on a job's
/// fiber the fiber suspends (the worker runs other jobs) and resumes on any worker; on any
/// other thread the thread parks on a futex. Returns at once if `linker` links nothing.
/// Errors: Error (FiberPoolExhausted) on a fiber when no fiber can be had to run other work
/// meanwhile (thrown before anything is linked).
void block_on(WaitLinker linker);

/// The coroutine side: fills `node` for `coroutine` (resuming on `scheduler`, or — when
/// nullptr — on the awaiting fiber's job system, else on the waker's) and runs the linker.
/// Returns what await_suspend must return: true when linked (suspended), false to go on.
bool suspend_coroutine_on(WaitLinker linker, WaitNode& node, Scheduler* scheduler,
                          std::coroutine_handle<> coroutine) noexcept;

/// Who a waiter is, for ownership (a mutex's owner): the fiber for a fiber node, the
/// coroutine's owner token (coroutine_owner_token) for a coroutine node, the thread for a
/// thread node.
[[nodiscard]] const void* waiter_token(const WaitNode& node) noexcept;
/// Who owns what `coroutine` locks through a guard: its job (JobRoot::lock_owner, assigned on
/// first use; never the token of another job, even in a recycled frame) when it runs as part of
/// a job on a fiber, else its frame. Call from the coroutine's await_suspend.
[[nodiscard]] const void* coroutine_owner_token(std::coroutine_handle<> coroutine) noexcept;
/// The owner token of the job running on the calling fiber when one of its coroutines took a
/// guard (coroutine_owner_token), else nullptr.
[[nodiscard]] const void* current_job_owner_token() noexcept;
/// The token of the calling plain code: its fiber on a job, else its thread.
[[nodiscard]] const void* current_token() noexcept;

/// Counts a plain `Mutex::lock()` (+1) or `unlock()` (-1) of the calling fiber (see
/// Fiber::plain_locks); nothing off a fiber.
void note_plain_lock(int delta) noexcept;

/// Which run segment the calling code is in: its fiber and the fiber's segment number (see
/// Fiber::segment); {nullptr, 0} off a fiber.
struct RunSegment {
  const void* fiber = nullptr;
  std::uint64_t segment = 0;
};
[[nodiscard]] RunSegment current_segment() noexcept;

}  // namespace fiberjob::detail
