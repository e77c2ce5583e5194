#pragma once
/// \file
/// `ConditionVariable`: waits for a condition under a `fiberjob::Mutex`, suspending jobs and
/// coroutines instead of blocking worker threads (Boost.Fiber's `fibers::condition_variable`,
/// marl's `marl::ConditionVariable`).

#include <coroutine>
#include <mutex>

#include "fiberjob/detail/stoppable_wait.hpp"
#include "fiberjob/detail/wait_node.hpp"
#include "fiberjob/detail/wait_queue.hpp"
#include "fiberjob/mutex.hpp"

namespace fiberjob {

/// Waiters release the mutex and wait atomically (the waiter is linked before the mutex is
/// released, on the thread that suspends it); a notify moves them, oldest first, onto the
/// mutex: each resumes owning the mutex (wait morphing — no wake just to contend again), on a
/// worker as for `Event::set()`. Spurious wake-ups do not happen (but see Cancellation), and a
/// condition notified may be false again by the time the waiter runs: wait with a predicate.
///
/// Cancellation: in a job spawned with a `std::stop_token`, every wait is a cancellation point
/// (as `std::condition_variable_any::wait` with a stop token, but throwing): it throws
/// `Error` (`Cancelled`) at once, still owning the mutex, when the stop came before; a
/// suspended waiter is taken off the queue by the stop, re-acquires the mutex (it queues on it
/// like a notified waiter) and throws owning it, so the lock or guard unlocks it as the job
/// unwinds. A waiter that a notify had already chosen when its stop came passes one notify on
/// (`notify_one`) before it throws, so a `notify_one` is not lost; another waiter may then wake
/// without a notify meant for it.
///
/// Cost: wait and notify take a short spin lock (no allocation, the node lives in the fiber,
/// the coroutine frame or the parked thread's stack); a notify with no waiter is one lock
/// round trip. Thread-safety: every member may be called concurrently from any thread;
/// notifying without holding the mutex is allowed. All waits on one condition variable must
/// use the same mutex. Lifetime: it must outlive every wait on it.
class ConditionVariable {
 public:
  ConditionVariable() noexcept = default;
  /// Aborts with a message naming the fix when someone still waits on it.
  ~ConditionVariable();
  ConditionVariable(const ConditionVariable&) = delete;
  ConditionVariable& operator=(const ConditionVariable&) = delete;

  /// Wakes the oldest waiter (it resumes once it owns the mutex). Suspends: no.
  void notify_one() noexcept;
  /// Wakes every waiter (they resume one by one as each owns the mutex). Suspends: no.
  void notify_all() noexcept;

  /// Plain code: releases `lock`'s mutex, waits for a notify, and returns owning it again.
  /// Suspends: the job's fiber (a plain thread parks); resumes on any worker.
  /// Errors: Error (SyncMisuse) when `lock` does not own its mutex, the caller is not its
  /// owner, or another mutex is used with this condition variable; Error (FiberPoolExhausted)
  /// as `this_fiber::wait`; Error (Cancelled) owning the mutex, see the class comment.
  /// \param lock a lock that owns the mutex used with this condition variable.
  void wait(std::unique_lock<Mutex>& lock);
  /// Waits until `predicate()` is true (checked under the mutex before each wait).
  /// \param lock a lock that owns the mutex used with this condition variable.
  /// \param predicate called with the mutex held; the wait returns once it yields true.
  template <class Predicate>
  void wait(std::unique_lock<Mutex>& lock, Predicate predicate) {
    while (!predicate()) wait(lock);
  }

  /// `co_await cv.wait(guard)`: the coroutine form (never suspends the fiber); resumes owning
  /// the guard's mutex again. Loop on the predicate: `while (!ready) co_await cv.wait(guard);`.
  /// Errors: Error (SyncMisuse) thrown by co_await, as the plain wait; Error (Cancelled) with
  /// the guard owning the mutex, see the class comment.
  class [[nodiscard]] WaitAwaiter {
   public:
    /// Made by `cv.wait(guard)`; not for direct use.
    /// \param cv the condition variable to wait on.
    /// \param guard the guard that owns the mutex used with `cv`.
    WaitAwaiter(ConditionVariable& cv, MutexGuard& guard) noexcept : cv_(cv), guard_(guard) {}
    WaitAwaiter(const WaitAwaiter&) = delete;
    WaitAwaiter& operator=(const WaitAwaiter&) = delete;
    /// \return false: a condition-variable wait always waits for a notify.
    bool await_ready() const noexcept { return false; }
    /// Releases the guard's mutex and links the coroutine until a notify.
    /// Errors: Error (SyncMisuse) as the plain wait.
    /// \param coroutine the awaiting coroutine.
    /// \return true (the coroutine suspends).
    bool await_suspend(std::coroutine_handle<> coroutine);
    /// Nothing to deliver: the guard owns the mutex again. Errors: Error (Cancelled).
    void await_resume() { cv_.finish_wait(wait_.end(), "co_await cv.wait(guard)"); }

   private:
    friend class ConditionVariable;
    ConditionVariable& cv_;
    MutexGuard& guard_;
    detail::WaitNode node_;
    detail::StoppableWait wait_;
  };
  /// See `WaitAwaiter`.
  /// \param guard the guard that owns the mutex used with this condition variable.
  /// \return the awaiter to `co_await` at once.
  WaitAwaiter wait(MutexGuard& guard) noexcept { return WaitAwaiter(*this, guard); }

 private:
  /// Checks `mutex` is owned by `owner` and is this condition variable's mutex.
  void check_wait(Mutex* mutex, const void* owner);
  /// Arms `wait`'s stop side for `mutex`; false when the job's stop came before (no wait).
  static bool begin_wait(detail::StoppableWait& wait, ConditionVariable& cv, Mutex* mutex);
  /// The WaitLinker of every wait (`wait` is a detail::StoppableWait): queues the node, then
  /// releases the mutex; or, when the wait's stop came first, links nothing and keeps it.
  static bool link_waiter(void* wait, detail::WaitNode& node) noexcept;
  /// StopWake::unlink of a wait: removes the node if no notify took it; true when it did.
  static bool unlink_waiter(void* wait, detail::WaitNode& node) noexcept;
  /// StopWake::hand_over of a wait: queues the node the stop removed on the wait's mutex.
  static void hand_to_own_mutex(void* wait, detail::WaitNode& node) noexcept;
  /// After a wait (owning the mutex again): returns on Completed; else passes a notify it took
  /// on and throws Cancelled naming `call`.
  void finish_wait(detail::WaitEnd end, const char* call);
  /// Moves the nodes of `chain` onto `mutex`, oldest first.
  static void hand_to_mutex(Mutex* mutex, detail::WaitNode* chain) noexcept;

  detail::WaitQueue queue_;
  /// The mutex of the waits (set by the first wait; read under queue_'s lock or by a waiter
  /// that owns it). nullptr before the first wait.
  Mutex* mutex_ = nullptr;
};

}  // namespace fiberjob
