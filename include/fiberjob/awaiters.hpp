#pragma once
/// \file
/// The awaitables of fiberjob: waiting on a counter, yielding, hopping onto the job system.
/// Each works from any coroutine type — ours (`Task`) or a foreign one — on or off our fibers.

#include <coroutine>
#include <stop_token>

#include "fiberjob/counter.hpp"
#include "fiberjob/detail/stop_wake.hpp"
#include "fiberjob/detail/stoppable_wait.hpp"
#include "fiberjob/detail/value_waiter.hpp"
#include "fiberjob/detail/wait_node.hpp"

namespace fiberjob {

namespace detail {
class Scheduler;

/// The stoppable form of a counter wait (a job whose token can be stopped): the armed
/// StopBlock's own node links onto the counter's lock-free list, and the drainer or the stop
/// callback, whichever claims it first, wakes the awaiter's node (stop_wake.cpp). One pointer
/// in the awaiter. Internal.
struct CounterStopWait {
  StopWait stop;
};
/// Waits for `counter` with the coroutine's `node` (filled, with its job's token) through a
/// stop block registered in `wait` (stop_wake.cpp). Returns as a WaitLinker does.
/// Errors: std::bad_alloc when the pool of stop blocks must grow and cannot (nothing linked).
bool link_stoppable_counter_wait(Counter& counter, WaitNode& node, CounterStopWait& wait);

/// Links `node` for `coroutine` and returns true; the last signal queues Job::ResumeCoroutine
/// on `scheduler` (see WaitNode::scheduler; on a fiber, nullptr means the fiber's system).
/// Returns false without linking when the job's stop was requested and `cancellable` (the
/// awaiter then throws Cancelled), or when the children run inline completed the counter.
/// Throws Error (CounterMisuse) for the counter of the running job itself. With `stop_wait`,
/// a job whose token can be stopped waits through it (link_stoppable_counter_wait), so a stop
/// wakes the suspended wait.
bool suspend_on_counter(Counter& counter, WaitNode& node, Scheduler* scheduler,
                        std::coroutine_handle<> coroutine, bool cancellable = true,
                        CounterStopWait* stop_wait = nullptr);
/// After the wait: lets the linker finish, then throws Cancelled when the job's stop was
/// requested, else rethrows the counter's exception.
void resume_from_counter(Counter& counter, WaitNode& node);
/// After a join (JoinAwaiter): lets the linker finish, then rethrows the counter's exception.
void resume_from_join(Counter& counter, WaitNode& node);
/// On a worker of `scheduler`: queues the coroutine on that worker's yield queue; elsewhere on
/// `scheduler`'s injector. Returns true; false, queueing nothing, when the job's stop was
/// requested.
bool suspend_for_yield(WaitNode& node, Scheduler& scheduler, std::coroutine_handle<> coroutine);
/// True when the calling thread is a worker of `scheduler`.
bool on_scheduler(const Scheduler& scheduler) noexcept;
/// Queues the coroutine on `scheduler`'s injector (Job::ResumeCoroutine).
void schedule_coroutine(WaitNode& node, Scheduler& scheduler, std::coroutine_handle<> coroutine);
/// True when `stop` (a job's stop token; nullptr: none) had a stop requested.
inline bool stop_requested(const std::stop_token* stop) noexcept {
  return stop != nullptr && stop->stop_requested();
}
/// Throws Error (Cancelled) for `call` when the calling job's stop was requested.
void throw_if_stopped(const char* call);
/// Plain code's join of children spawned with the caller's stop token: waits for `counter` as
/// `JobSystem::wait` does (stackful on a fiber, parking a plain thread) but without its stop
/// checks, then rethrows the counter's exception. Errors: as `JobSystem::wait` otherwise.
void join_counter(Counter& counter);
}  // namespace detail

/// `co_await ctx.wait(counter)`, `co_await counter`: resumes when `counter` reaches zero, then
/// rethrows the first exception a job on it threw.
///
/// * Already zero: does not suspend (no switch, no allocation).
/// * Otherwise, on a worker, the jobs of `counter` this coroutine spawned onto the worker's deque
///   run inline first (work-first, while the stack has headroom, as `this_fiber::wait`); if
///   they complete the counter, the coroutine goes on without suspending.
/// * Otherwise the *coroutine* suspends, never the fiber (stackless): the node in this awaiter
///   (in the coroutine frame) is linked, `await_suspend` returns true, and the fiber goes on
///   with other jobs. The last signal queues `Job::ResumeCoroutine`, and a worker resumes the
///   coroutine inline on whatever fiber it runs — no fiber switch, and a suspended coroutine job
///   holds no fiber or stack, only its frame. It continues on a worker of the job system it was
///   awaited through (`ctx.wait`), or for a bare `co_await counter` on the awaiting worker's
///   system (off our workers: the system that last ran jobs on the counter). A counter no job
///   system ever ran jobs on resumes the coroutine on the thread that signals it, before the
///   outermost signal on that thread returns: a coroutine that signals another such counter
///   only queues the next one on a per-thread trampoline, so a chain of any length runs at a
///   bounded stack depth.
/// * Contrast `this_fiber::wait`, which suspends the whole fiber (any call depth, any code).
/// * In a job spawned with a `std::stop_token`: completes with `Error` (`Cancelled`) when the
///   stop was requested before the wait, or while the coroutine is suspended — the stop wakes
///   it, also when the counter would never reach zero. Such a job (its token's
///   `stop_possible()`) waits on the same lock-free list with a `std::stop_callback`
///   registered and a pooled stop block (no allocation once the pool is warm): the signal and
///   the stop each try to claim the wait, and the one that wins wakes it. A wait the stop
///   woke leaves its block on the counter's list until the counter drains (at the latest
///   when it is destroyed). Jobs without a token pay nothing for this.
/// Errors: Error (CounterMisuse) when awaiting the counter the running job itself signals;
///   Error (Cancelled), see above.
/// Thread-safety: one awaiter per co_await; any number of awaiters per counter.
/// Lifetime: the counter must outlive the co_await.
class [[nodiscard]] WaitAwaiter {
 public:
  /// Made by `Context::wait` and `Counter::operator co_await`; not for direct use.
  /// \param counter the counter to wait for.
  /// \param scheduler the job system to resume on (nullptr: see the class comment).
  WaitAwaiter(Counter& counter, detail::Scheduler* scheduler) noexcept : counter_(counter) {
    node_.scheduler = scheduler;  // the node keeps it until await_suspend fills it in
  }
  WaitAwaiter(const WaitAwaiter&) = delete;
  WaitAwaiter& operator=(const WaitAwaiter&) = delete;

  /// One inline load: a counter that is not plainly zero (jobs pending, a drain in progress,
  /// or signals this worker holds back) goes through await_suspend, which sorts that out.
  /// \return true when the counter is zero already: no suspension.
  bool await_ready() const noexcept {
    // acquire: as CounterWaitList::load_settled (pairs with the release of the final
    // signaller's update): seeing 0 means seeing all writes of the counter's jobs.
    return counter_.value_.load(std::memory_order_acquire) == 0;
  }
  /// Runs the job's own children inline (on a worker), then links the coroutine into the
  /// counter's wait list. Throws `Error` (`CounterMisuse`) for the running job's own counter.
  /// \param coroutine the awaiting coroutine.
  /// \return false when the counter is zero after all (or the children run inline completed
  ///   it: the coroutine goes on at once), else true.
  bool await_suspend(std::coroutine_handle<> coroutine) {
    return detail::suspend_on_counter(counter_, node_, node_.scheduler, coroutine, true,
                                      &stop_wait_);
  }
  /// Rethrows the first exception a job on the counter threw, if any.
  /// Errors: Error (Cancelled) when the job's stop was requested.
  void await_resume() {
    stop_wait_.stop.disarm();  // first: waits for a stop callback still running elsewhere
    // Inline the common end: no linker still at work, no stop token, no exception kept; else
    // the out-of-line half. acquire: as CounterWaitList::wait_for_linker (pairs with the
    // linker's release store of `linking`: its touches of the counter happen before ours) and
    // rethrow_if_error (pairs with the release store that completed a capture).
    // A coroutine that was linked (await_suspend set its address just before the link) and
    // woken by the last signal reads not the counter, which may be gone, but its node: the
    // drain set `error_kept` when the counter keeps an exception. One that never linked (the
    // count was zero) reads the counter, which its own co_await keeps alive.
    if (node_.linking.load(std::memory_order_acquire) != 0 || node_.job_stop != nullptr ||
        (node_.coroutine_address == nullptr
             ? counter_.error_state_.load(std::memory_order_acquire) != Counter::kNoError
             : node_.error_kept != 0)) [[unlikely]] {
      detail::resume_from_counter(counter_, node_);
    }
  }

 private:
  // In this order, so that the 16-byte aligned node leaves no padding (80 bytes in all).
  detail::CounterStopWait stop_wait_;  ///< used only by a job whose token can be stopped
  Counter& counter_;
  detail::WaitNode node_;
};

namespace detail {

/// `co_await` of the children of a structured call (`when_all`, `when_any`, `JobHandle`,
/// `parallel_for_async`): `WaitAwaiter` without the stop check. The children were spawned with
/// the caller's stop token (or one chained to it), so a stop reaches them and they end; the
/// join waits for that instead of leaving them running, and the caller checks its stop after
/// it. Rethrows the counter's exception. Internal.
class [[nodiscard]] JoinAwaiter {
 public:
  /// \param counter the children's counter.
  /// \param scheduler the job system to resume on (nullptr: as `WaitAwaiter`).
  JoinAwaiter(Counter& counter, Scheduler* scheduler) noexcept
      : counter_(counter), scheduler_(scheduler) {}
  JoinAwaiter(const JoinAwaiter&) = delete;
  JoinAwaiter& operator=(const JoinAwaiter&) = delete;

  /// \return true when every child ended already.
  bool await_ready() const noexcept { return counter_.done(); }
  /// As `WaitAwaiter::await_suspend`, also in a job whose stop was requested.
  /// \param coroutine the awaiting coroutine.
  /// \return false when the counter completed meanwhile, else true.
  bool await_suspend(std::coroutine_handle<> coroutine) {
    return suspend_on_counter(counter_, node_, scheduler_, coroutine, /*cancellable=*/false);
  }
  /// Rethrows the first exception a child threw, if any.
  void await_resume() { resume_from_join(counter_, node_); }

 private:
  Counter& counter_;
  Scheduler* scheduler_;
  WaitNode node_;
};

}  // namespace detail

/// `co_await ctx.yield()`: lets the work that is ready now run first, then continues.
/// * In a job spawned with a `std::stop_token` whose stop was requested (before the yield or
///   while it waited in the queue): completes with `Error` (`Cancelled`), without queueing.
/// * On a worker: the coroutine (not the fiber) goes onto the worker's FIFO yield queue, behind
///   the ready work, and continues when a worker takes it (an idle worker may). No allocation,
///   no fiber switch.
/// * Off our workers: the coroutine is queued on the job system's injector and continues on a
///   worker (so from a foreign thread it is also a hop onto the job system).
class [[nodiscard]] YieldAwaiter {
 public:
  /// Made by `Context::yield`; not for direct use.
  /// \param scheduler the job system to yield to.
  explicit YieldAwaiter(detail::Scheduler& scheduler) noexcept : scheduler_(scheduler) {}
  YieldAwaiter(const YieldAwaiter&) = delete;
  YieldAwaiter& operator=(const YieldAwaiter&) = delete;

  /// \return false: a yield always reaches `await_suspend`.
  bool await_ready() const noexcept { return false; }
  /// Queues the coroutine behind the ready work (see the class comment).
  /// \param coroutine the awaiting coroutine.
  /// \return true when the coroutine was queued (a worker resumes it); false when its job's
  ///   stop was requested (it goes on at once and `await_resume` throws).
  bool await_suspend(std::coroutine_handle<> coroutine) {
    return detail::suspend_for_yield(node_, scheduler_, coroutine);
  }
  /// Errors: `Error` (`Cancelled`) when the job's stop was requested.
  void await_resume() const {
    if (detail::stop_requested(node_.job_stop)) detail::throw_cancelled("co_await ctx.yield()");
  }

 private:
  detail::Scheduler& scheduler_;
  detail::WaitNode node_;
};

/// `co_await js.schedule()`: continues the awaiting coroutine on a worker of the job system.
/// Does not suspend when the caller already runs on one of its workers; otherwise queues the
/// coroutine in the injector (`Job::ResumeCoroutine`). No allocation.
class [[nodiscard]] ScheduleAwaiter {
 public:
  /// Made by `JobSystem::schedule`; not for direct use.
  /// \param scheduler the job system to continue on.
  explicit ScheduleAwaiter(detail::Scheduler& scheduler) noexcept : scheduler_(scheduler) {}
  ScheduleAwaiter(const ScheduleAwaiter&) = delete;
  ScheduleAwaiter& operator=(const ScheduleAwaiter&) = delete;

  /// \return true on a worker of the job system already: no suspension.
  bool await_ready() const noexcept { return detail::on_scheduler(scheduler_); }
  /// Queues the coroutine in the job system's injector.
  /// \param coroutine the awaiting coroutine.
  void await_suspend(std::coroutine_handle<> coroutine) {
    detail::schedule_coroutine(node_, scheduler_, coroutine);
  }
  /// Nothing to return or rethrow.
  void await_resume() const noexcept {}

 private:
  detail::Scheduler& scheduler_;
  detail::WaitNode node_;
};

inline WaitAwaiter Counter::operator co_await() noexcept { return WaitAwaiter(*this, nullptr); }

}  // namespace fiberjob
