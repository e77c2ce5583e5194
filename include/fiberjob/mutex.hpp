#pragma once
/// \file
/// `Mutex`: a mutual-exclusion lock that suspends jobs and coroutines instead of blocking
/// worker threads (FiberTaskingLib's fibtex, Boost.Fiber's `fibers::mutex`).

#include <atomic>
#include <coroutine>
#include <cstdint>

#include "fiberjob/detail/stoppable_wait.hpp"
#include "fiberjob/detail/wait_node.hpp"
#include "fiberjob/detail/wait_queue.hpp"

namespace fiberjob {

class ConditionVariable;
class Mutex;

/// Owns a locked `Mutex` and unlocks it when destroyed: what `co_await m.scoped_lock()`
/// returns. Movable, not copyable. Thread-safety: one guard, one owner.
class [[nodiscard]] MutexGuard {
 public:
  /// A guard that owns nothing.
  MutexGuard() noexcept = default;
  /// Made by `co_await m.scoped_lock()`; not for direct use.
  /// \param mutex the mutex the caller has just locked.
  /// \param owner who owns it (the awaiting coroutine's frame).
  MutexGuard(Mutex& mutex, const void* owner) noexcept : mutex_(&mutex), owner_(owner) {}
  /// Takes over `other`'s ownership; `other` then owns nothing.
  /// \param other the guard to move from.
  MutexGuard(MutexGuard&& other) noexcept : mutex_(other.mutex_), owner_(other.owner_) {
    other.mutex_ = nullptr;
  }
  /// Unlocks what this guard owns, then takes over `other`'s ownership.
  /// \param other the guard to move from; it then owns nothing.
  /// \return this guard.
  MutexGuard& operator=(MutexGuard&& other) noexcept;
  MutexGuard(const MutexGuard&) = delete;
  MutexGuard& operator=(const MutexGuard&) = delete;
  /// Unlocks the mutex if the guard still owns it.
  ~MutexGuard() { unlock(); }

  /// Unlocks early (no effect when the guard owns nothing). Suspends: no.
  void unlock() noexcept;
  /// Whether the guard owns a locked mutex.
  /// \return true when it does.
  [[nodiscard]] bool owns_lock() const noexcept { return mutex_ != nullptr; }
  /// The mutex it owns.
  /// \return the mutex, or nullptr when the guard owns none.
  [[nodiscard]] Mutex* mutex() const noexcept { return mutex_; }

 private:
  friend class ConditionVariable;
  Mutex* mutex_ = nullptr;
  const void* owner_ = nullptr;  ///< Who owns it: the coroutine's job (see Mutex::owner_)
};

/// A fiber-aware mutual-exclusion lock.
///
/// * Plain code: `lock()` / `try_lock()` / `unlock()` (the standard *Lockable* requirements,
///   so `std::scoped_lock`, `std::unique_lock` and `std::lock_guard` work). `lock()` on a
///   contended mutex suspends the job's fiber (the worker runs other jobs); on a plain thread
///   it parks the thread. The owner is the job's fiber or the thread. A plain job must unlock
///   before it returns: fibers are pooled, so a lock left held would pass to the next job on
///   that fiber; the worker stops the process with a message naming the mistake instead.
/// * Plain `lock()` in a coroutine is allowed only when `unlock()` follows before the next
///   suspending `co_await`: the coroutine may resume on another fiber, which does not own the
///   lock. A coroutine that suspends holding a plain lock stops the process with a message
///   naming the fix, `auto guard = co_await m.scoped_lock();`.
/// * Coroutines: `auto guard = co_await m.scoped_lock();` suspends the coroutine (never the
///   fiber) until it owns the mutex; the guard unlocks. The owner is the coroutine's job (every
///   `Task` it awaits included; a coroutine that is not part of a job owns it by its frame), so
///   the guard may be unlocked on another worker after the coroutine moved, and a guard that
///   outlives the job keeps that job as owner: later jobs, even in a recycled coroutine frame,
///   wait for the guard's unlock like anyone else.
///
/// Fairness: strict FIFO hand-off. `unlock()` with waiters passes ownership to the oldest
/// waiter directly (the mutex never looks free in between), and `try_lock()` fails while
/// anyone waits, so no one barges past the queue. This costs a wake per contended unlock (a
/// lock holder that comes back at once queues behind the others), the price of no starvation.
/// Waiters resume on a worker as for `Event::set()`; the unlocking code goes on.
///
/// Cancellation: in a job spawned with a `std::stop_token`, `lock()` and
/// `co_await scoped_lock()` are cancellation points when the mutex is not free: they throw
/// `Error` (`Cancelled`) at once when the stop came before, and a suspended waiter is woken by
/// the stop (it leaves the queue; the others keep their places) and throws without the lock.
/// When an unlock handed the mutex to a waiter whose stop came meanwhile, that waiter unlocks
/// it again (passing it to the next waiter) before it throws: ownership is never lost. A free
/// mutex is taken as usual (the caller's next wait or yield throws).
///
/// Cost: uncontended lock and unlock are one compare-exchange each (no allocation, no spin
/// lock). A contended lock links an intrusive node (in the fiber, the coroutine frame or the
/// parked thread's stack) under a short spin lock; no allocation ever.
/// Thread-safety: every member may be called concurrently from any thread.
/// Lifetime: must outlive every lock on it; it may be destroyed by the owner right after it
/// acquired it (unlock touches the mutex last before it wakes anyone).
class Mutex {
 public:
  Mutex() noexcept = default;
  /// Aborts with a message naming the fix when someone still waits for it.
  ~Mutex();
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  /// Locks: returns once the caller owns the mutex. Suspends: the job's fiber, or parks the
  /// plain thread, while another owner holds it; resumes on any worker.
  /// Errors: Error (SyncMisuse) when the caller owns it already (it would never return):
  /// the same job or thread, or code of a coroutine job that holds it through a guard its
  /// coroutines took with `co_await scoped_lock()` (before or after any suspension), or a
  /// coroutine running on the same stack that holds it so and has not suspended since;
  /// Error (FiberPoolExhausted) as `this_fiber::wait`; Error (Cancelled) in a job whose stop
  /// was requested, see the class comment.
  void lock();
  /// Locks when free and nobody waits; never suspends.
  /// \return true when the caller now owns the mutex.
  [[nodiscard]] bool try_lock() noexcept;
  /// Unlocks, handing it to the oldest waiter if any. Suspends: no.
  /// Errors: aborts with a message when the caller does not own it (unlock of an unlocked
  /// mutex, or by another job or thread than the one that locked it).
  void unlock() noexcept;

  /// `co_await m.scoped_lock()`: see the class comment. No allocation (a job with a stop
  /// token: one pooled block, see detail::StopWait).
  /// Errors: Error (SyncMisuse) thrown by co_await when this coroutine's job owns it already;
  /// Error (Cancelled), see the class comment.
  class [[nodiscard]] LockAwaiter {
   public:
    /// Made by `scoped_lock()`; not for direct use.
    /// \param mutex the mutex to lock.
    explicit LockAwaiter(Mutex& mutex) noexcept : mutex_(mutex) {}
    LockAwaiter(const LockAwaiter&) = delete;
    LockAwaiter& operator=(const LockAwaiter&) = delete;
    /// \return false: the lock is tried in await_suspend, which knows the coroutine (owner).
    bool await_ready() const noexcept { return false; }
    /// Takes the mutex when free, else links the coroutine into its wait queue.
    /// Errors: Error (SyncMisuse) when this coroutine's job owns the mutex already.
    /// \param coroutine the awaiting coroutine (its job, or its frame, becomes the owner).
    /// \return false when the mutex was taken at once (the coroutine goes on), else true.
    bool await_suspend(std::coroutine_handle<> coroutine);
    /// Notes where the owning coroutine runs (to catch a plain `lock()` of it on the same
    /// stack, see `lock()`). \return the guard that owns the mutex now.
    /// Errors: Error (Cancelled), see the class comment (the guard is not made then).
    MutexGuard await_resume();

   private:
    Mutex& mutex_;
    const void* owner_ = nullptr;
    detail::WaitNode node_;
    detail::StoppableWait wait_;
  };
  /// See `LockAwaiter`.
  /// \return the awaiter to `co_await` at once.
  LockAwaiter scoped_lock() noexcept { return LockAwaiter(*this); }

 private:
  friend class MutexGuard;
  friend class ConditionVariable;
  /// WaitQueue state bits: kHeld = someone owns it; kWaiters = the queue is not empty (so the
  /// lock-free unlock must not clear kHeld: ownership goes to the oldest waiter).
  static constexpr std::uint32_t kHeld = 2;
  static constexpr std::uint32_t kWaiters = 4;

  bool try_lock_as(const void* owner) noexcept;
  void lock_as(const void* owner);
  /// Unlocks as `owner`, aborting with `what` when `owner` does not own it.
  void unlock_as(const void* owner, const char* what) noexcept;
  /// Hands the mutex on: to the oldest waiter, else makes it free. The caller owned it.
  void release() noexcept;
  /// Makes `node` own the mutex now (and wakes it) or queues it: the hand-over of a
  /// condition-variable waiter. Never blocks.
  void acquire_or_queue(detail::WaitNode& node) noexcept;
  /// The linker of a contended lock (`wait` is a detail::StoppableWait): takes the mutex when
  /// free, else links nothing when the wait's stop came first, else queues the node.
  static bool link_locker(void* wait, detail::WaitNode& node) noexcept;
  /// StopWake::unlink of a lock wait: removes the node from the queue if no unlock handed it
  /// the mutex; true when it did.
  static bool unlink_locker(void* wait, detail::WaitNode& node) noexcept;
  /// After a stoppable lock wait: returns on Completed (the caller owns the mutex); else
  /// unlocks what an unlock handed over, and throws Cancelled naming `call`.
  void finish_lock(detail::WaitEnd end, const char* call);

  detail::WaitQueue queue_;
  /// The owner's token (detail::waiter_token): fiber, coroutine job (detail::JobRoot), coroutine
  /// frame or thread; nullptr when
  /// free. Written by the acquirer (or the hand-off) and cleared before the release, so a
  /// caller that reads its own token knows it owns the mutex. relaxed: only compared with the
  /// reader's own token; ownership itself is ordered by the queue word.
  std::atomic<const void*> owner_{nullptr};
  /// When a coroutine owns it: the fiber and run segment (detail::current_segment) in which
  /// the coroutine resumed owning it; nullptr otherwise. A plain lock() from that same segment
  /// would wait for itself (the owner is further up the same stack). relaxed: written and
  /// compared by code of the owning segment only; the hand-off or release clears it before
  /// anyone else can own the mutex (the queue word orders that).
  std::atomic<const void*> owner_fiber_{nullptr};
  std::atomic<std::uint64_t> owner_segment_{0};
};

}  // namespace fiberjob
