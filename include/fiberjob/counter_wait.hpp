#pragma once
/// \file
/// Waiting for a counter to fall to a value (Naughty Dog's and FiberTaskingLib's
/// `WaitForCounter(counter, value)`): `co_await ctx.wait(counter, target)`,
/// `this_fiber::wait(counter, target)`.

#include <coroutine>
#include <cstdint>

#include "fiberjob/awaiters.hpp"
#include "fiberjob/counter.hpp"
#include "fiberjob/detail/stop_wake.hpp"
#include "fiberjob/detail/timer_entry.hpp"
#include "fiberjob/detail/value_waiter.hpp"
#include "fiberjob/detail/wait_node.hpp"
#include "fiberjob/detail/wait_queue.hpp"

namespace fiberjob {

namespace detail {
class Scheduler;

/// True when `counter`'s count is at or below `target` now (acquire: the writes of the jobs
/// whose signals brought it there are visible).
bool value_reached(const Counter& counter, std::int64_t target) noexcept;
/// Throws Error (CounterMisuse) for a negative target.
void check_target(std::int64_t target);
/// The linker of a value wait (WaitLinker::link); `object` is the ValueWaiter.
bool link_value_wait(void* object, WaitNode& node) noexcept;
/// StopWake::unlink of a value wait: removes the ValueWaiter `object` from its counter's list
/// if a signal has not taken it; true when it did.
bool unlink_value_wait(void* object, WaitNode& node) noexcept;
}  // namespace detail

/// `co_await ctx.wait(counter, target)`: resumes once `counter`'s count is at or below
/// `target` (>= 0). Does not suspend when it is already. Otherwise the coroutine (never the
/// fiber) suspends with its node in this awaiter; the signal that brings the count to `target`
/// or below queues it on a worker of the job system it was awaited through. Unlike the wait
/// for zero, it neither runs the counter's jobs inline first nor rethrows a job's exception
/// (the wait for zero delivers it). No allocation. Cost while value waiters are linked: every
/// signal of the counter takes a spin lock and scans the value waiters (O(value waiters)); a
/// counter with none pays one compare per signal.
/// Cancellation: in a job whose stop was requested (spawned with a `std::stop_token`) it
/// completes with `Error` (`Cancelled`) — at once, without suspending, when the stop came
/// before (and the count is above `target`); a wait already suspended is woken by the stop
/// (its callback unlinks the waiter under the list's lock) and throws when it resumes.
/// Errors: Error (CounterMisuse) for a negative target, thrown by co_await; Error (Cancelled).
/// Thread-safety: one awaiter per co_await; any number of waiters with any targets.
class [[nodiscard]] ValueWaitAwaiter {
 public:
  /// Made by `Context::wait(counter, target)`; not for direct use.
  /// \param counter the counter to watch.
  /// \param target the count (>= 0) at or below which the coroutine resumes.
  /// \param scheduler the job system to resume on.
  ValueWaitAwaiter(Counter& counter, std::int64_t target, detail::Scheduler* scheduler) noexcept
      : scheduler_(scheduler) {
    waiter_.counter = &counter;
    waiter_.target = target;
  }
  ValueWaitAwaiter(const ValueWaitAwaiter&) = delete;
  ValueWaitAwaiter& operator=(const ValueWaitAwaiter&) = delete;

  /// \return true when the count is at or below the target already.
  bool await_ready() const noexcept {
    return waiter_.target >= 0 && detail::value_reached(*waiter_.counter, waiter_.target);
  }
  /// Links the coroutine into the counter's list of value waiters, unless the target was
  /// reached meanwhile or the job's stop was requested. Errors: Error (CounterMisuse) for a
  /// negative target.
  /// \param coroutine the awaiting coroutine.
  /// \return false when the target was reached meanwhile or the stop requested (the coroutine
  ///   goes on), else true.
  bool await_suspend(std::coroutine_handle<> coroutine) {
    detail::check_target(waiter_.target);
    stop_ = detail::current_job_stop();
    if (detail::stop_requested(stop_)) return false;  // await_resume throws Cancelled
    waiter_.stop = stop_wait_.arm(stop_, &detail::unlink_value_wait, &waiter_);
    return detail::suspend_coroutine_on(
        {&detail::link_value_wait, &waiter_, "a Counter's value", waiter_.counter}, node_,
        scheduler_, coroutine);
  }
  /// Nothing to deliver: the count was at or below the target.
  /// Errors: Error (Cancelled) when the job's stop was requested.
  void await_resume() {
    stop_wait_.disarm();  // first: waits for a callback still running elsewhere
    if (detail::stop_requested(stop_))
      detail::throw_cancelled("co_await ctx.wait(counter, target)");
  }

 private:
  detail::Scheduler* scheduler_;
  const std::stop_token* stop_ = nullptr;  ///< the awaiting job's token (lives as long as it)
  detail::ValueWaiter waiter_;
  detail::WaitNode node_;
  detail::StopWait stop_wait_;
};

namespace this_fiber {
/// Suspends the calling plain code until `counter`'s count is at or below `target` (>= 0).
/// Returns at once when it is. Target 0 is the wait for zero: in a job the same as
/// `wait(counter)`, on a plain thread the same as `JobSystem::wait(counter)` (the thread parks;
/// no NotOnFiber), both with its rethrow.
/// Suspends: yes, unless reached — in a job the fiber waits on the counter's list of value
///   waiters and resumes on any worker; on a plain thread the thread parks. Never blocks a
///   worker thread. No allocation.
/// Errors: Error (CounterMisuse) for a negative target; Error (FiberPoolExhausted) as
///   `wait(counter)`; Error (Cancelled) in a job whose stop was requested — at once, without
///   suspending, when the stop came first and the target is not reached yet, else promptly:
///   the stop wakes the suspended wait. A target already reached returns normally also after
///   a stop. A target > 0 does not rethrow the counter's exception.
/// Thread-safety: any number of waiters with any targets.
/// \param counter the counter to watch; it must outlive the wait.
/// \param target the count (>= 0) at or below which the wait returns.
void wait(Counter& counter, std::int64_t target);
}  // namespace this_fiber

}  // namespace fiberjob
