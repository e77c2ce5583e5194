#pragma once
/// \file
/// `Semaphore`: a counting semaphore whose waiters are suspended jobs, coroutines or parked
/// threads (std::counting_semaphore's contract, fiber-aware).

#include <coroutine>
#include <cstdint>

#include "fiberjob/detail/stoppable_wait.hpp"
#include "fiberjob/detail/wait_node.hpp"
#include "fiberjob/detail/wait_queue.hpp"

namespace fiberjob {

/// Holds a count of permits: `acquire()` takes one, waiting while there is none; `release(n)`
/// returns n. Fairness: FIFO hand-off — a release gives its permits to the oldest waiters
/// directly, and `try_acquire()` fails while anyone waits (no barging). Waiters resume on a
/// worker as for `Event::set()`.
///
/// Cost: acquire and release take a short spin lock (two atomic operations) when nobody waits;
/// a wait links an intrusive node (no allocation). The count is held in 30 bits of the queue
/// word: at most `kMax` permits.
/// Cancellation: in a job spawned with a `std::stop_token`, `acquire()` and
/// `co_await acquire_async()` are cancellation points when no permit is free: they throw
/// `Error` (`Cancelled`) at once when the stop came before, and a suspended waiter is woken by
/// the stop (it leaves the queue) and throws without a permit. A permit that a release handed
/// to a waiter whose stop came meanwhile is released again (to the next waiter, or the count)
/// before it throws: no permit is lost. A free permit is taken as usual.
/// Thread-safety: every member may be called concurrently from any thread.
/// Lifetime: must outlive every acquire on it; the last acquirer may destroy it at once.
class Semaphore {
 public:
  /// The largest count a semaphore can hold.
  static constexpr std::int64_t kMax = (std::int64_t{1} << 30) - 1;

  /// A semaphore holding `initial` permits (0 <= initial <= kMax).
  /// Errors: Error (SyncMisuse) when `initial` is out of range.
  /// \param initial the permits it starts with.
  explicit Semaphore(std::int64_t initial = 0);
  /// Aborts with a message naming the fix when someone still waits on it.
  ~Semaphore();
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  /// Takes a permit, waiting for one. Suspends: the job's fiber (or parks a plain thread)
  /// while there is none; resumes on any worker. Errors: Error (FiberPoolExhausted) as
  /// `this_fiber::wait`; Error (Cancelled), see the class comment.
  void acquire();
  /// Takes a permit when one is free and nobody waits; never suspends.
  /// \return true when the caller took a permit.
  [[nodiscard]] bool try_acquire() noexcept;
  /// Returns `n` (>= 1) permits: the oldest waiters get one each, the rest stay in the count.
  /// Suspends: no. Errors: Error (SyncMisuse) for n < 1, or when the permits left after one
  /// to each waiter would raise the count past `kMax` (nothing is released then); n itself
  /// may exceed `kMax` when waiters take the difference.
  /// \param n the permits to return.
  void release(std::int64_t n = 1);
  /// The free permits now (a snapshot).
  /// \return the count of free permits.
  [[nodiscard]] std::int64_t available() const noexcept;

  /// `co_await sem.acquire_async()`: takes a permit, suspending the coroutine (never the fiber)
  /// while there is none. No allocation (a job with a stop token: one pooled block, see
  /// detail::StopWait). Errors: Error (Cancelled), see the class comment.
  class [[nodiscard]] AcquireAwaiter {
   public:
    /// Made by `acquire_async()`; not for direct use.
    /// \param semaphore the semaphore to take a permit from.
    explicit AcquireAwaiter(Semaphore& semaphore) noexcept : semaphore_(semaphore) {}
    AcquireAwaiter(const AcquireAwaiter&) = delete;
    AcquireAwaiter& operator=(const AcquireAwaiter&) = delete;
    /// \return true when a permit was taken at once.
    bool await_ready() noexcept { return semaphore_.try_acquire(); }
    /// Links the coroutine into the semaphore's wait queue, unless a permit came meanwhile.
    /// \param coroutine the awaiting coroutine.
    /// \return false when a permit was taken meanwhile (the coroutine goes on), else true.
    bool await_suspend(std::coroutine_handle<> coroutine) {
      if (!wait_.begin(detail::current_job_stop(), &semaphore_, &Semaphore::unlink_acquirer)) {
        return false;
      }
      return detail::suspend_coroutine_on(
          {&Semaphore::link_acquirer, &wait_, "Semaphore", &semaphore_}, node_, nullptr, coroutine);
    }
    /// Nothing to deliver: the caller holds a permit now. Errors: Error (Cancelled).
    void await_resume() { semaphore_.finish_acquire(wait_.end(), "co_await acquire_async()"); }

   private:
    Semaphore& semaphore_;
    detail::WaitNode node_;
    detail::StoppableWait wait_;
  };
  /// See `AcquireAwaiter`.
  /// \return the awaiter to `co_await` at once.
  AcquireAwaiter acquire_async() noexcept { return AcquireAwaiter(*this); }

 private:
  /// The count sits above the queue's lock bit: state = count << 1.
  static constexpr unsigned kShift = 1;
  /// The linker of an acquire (`wait` is a detail::StoppableWait): takes a permit when one is
  /// free, else links nothing when the wait's stop came first, else queues the node.
  static bool link_acquirer(void* wait, detail::WaitNode& node) noexcept;
  /// StopWake::unlink of an acquire: removes the node if no release handed it a permit.
  static bool unlink_acquirer(void* wait, detail::WaitNode& node) noexcept;
  /// After a stoppable acquire: returns on Completed; else releases a permit handed over and
  /// throws Cancelled naming `call`.
  void finish_acquire(detail::WaitEnd end, const char* call);

  detail::WaitQueue queue_;
};

}  // namespace fiberjob
