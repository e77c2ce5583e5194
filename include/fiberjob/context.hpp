#pragma once
/// \file
/// `Context`: what every job receives — spawning nested jobs, awaiting counters, yielding.

#include <cstddef>
#include <limits>
#include <span>
#include <stop_token>
#include <utility>

#include "fiberjob/awaiters.hpp"
#include "fiberjob/blocking.hpp"
#include "fiberjob/config.hpp"
#include "fiberjob/counter.hpp"
#include "fiberjob/counter_wait.hpp"
#include "fiberjob/detail/job_record.hpp"
#include "fiberjob/detail/stoppable.hpp"
#include "fiberjob/job_options.hpp"
#include "fiberjob/timer.hpp"

namespace fiberjob {

class JobSystem;
class AttachedThread;
class ResumeOnAwaiter;
class ResumeOnAnyAwaiter;

namespace detail {
struct ContextAccess;
}  // namespace detail

/// Handed by reference to every job (`void(Context&)` or `Task<>(Context&)`). One `Context`
/// exists per `JobSystem` and lives as long as it, so a coroutine job may keep the reference
/// across any suspension. It does not name a thread: after a suspension the job may continue on
/// another worker, and `worker_index()` tells the current one.
///
/// Suspending: in coroutine jobs `co_await ctx.wait(counter)` and `co_await ctx.yield()`; in
/// plain code `this_fiber::wait(counter)` and `this_fiber::yield()` (any call depth). Both use
/// the same wait list and queues; the awaiters suspend only the coroutine (stackless: the fiber
/// runs other jobs meanwhile), the `this_fiber` calls suspend the whole fiber (stackful).
///
/// Thread-safety: every member may be called from any thread, concurrently.
class Context {
 public:
  /// `worker_index()` off the job system's workers.
  static constexpr std::size_t kNotAWorker = std::numeric_limits<std::size_t>::max();

  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// Starts `fn` (a `void(Context&)`, `void()`, `Task<>(Context&)` or `Task<>()` callable,
  /// copied or moved into the job) as a child job; `counter` gets one unit, signalled when the
  /// job ends — for a coroutine, at its final suspend — also when it throws (the first
  /// exception is kept on the counter and rethrown to its waiters).
  /// On a worker the job goes onto that worker's deque (LIFO for it, stealable by others); from
  /// elsewhere (a coroutine resumed by a foreign thread) into the injector.
  /// Suspends: no. Allocation: none for callables up to 40 bytes (alignment <= 16) once warm;
  ///   a larger callable is boxed with `new`; a coroutine job allocates its frame.
  /// Errors: rethrows an exception from copying `fn`; `Error` (`CounterMisuse`) for a counter
  ///   that was over-signalled. Nothing is queued when it throws.
  /// \param counter gets one unit now, signalled when the job ends.
  /// \param fn the job.
  /// \param priority the queue the job goes into (High runs before Normal before Low).
  template <detail::JobCallable F>
  void spawn(Counter& counter, F&& fn, Priority priority = Priority::Normal) {
    detail::JobRecord* record = detail::make_record(scheduler_, counter, std::forward<F>(fn));
    detail::submit_one(scheduler_, counter, record, priority);
  }

  /// Starts `fn` as a child job, as the spawn above, with a stop token: once a stop is
  /// requested on `stop`'s source, the job's waits, sleeps and yields (`co_await ctx.wait`,
  /// `co_await ctx.yield()`, `this_fiber::wait`, `this_fiber::yield`, `JobSystem::wait`, the
  /// waits on `Event`, `Mutex`, `ConditionVariable` and `Semaphore`: docs/api.md, Errors,
  /// `Cancelled`) complete with `Error` (`Cancelled`) — at once if the stop came first; a wait
  /// already suspended is woken by the stop, even on a counter that never reaches zero — so
  /// the job unwinds (its destructors run) and its counter is signalled, with the `Cancelled` error
  /// kept on it unless another exception came first. `ctx.stop_token()` reads the token in the job.
  /// The token is the job's only: jobs it spawns with `spawn` get their own (or none); the
  /// children of `when_all`, `when_any`, `JobHandle` and `parallel_for` get the job's token
  /// (or one chained to it), so its stop reaches them.
  /// Cost: the token (8 bytes) is stored beside `fn` in the job's record, so `fn` fits inline
  ///   up to 32 bytes; no other cost, and none for jobs spawned without a token.
  /// \param counter gets one unit now, signalled when the job ends.
  /// \param fn the job.
  /// \param stop the job's stop token.
  /// \param priority the queue the job goes into.
  template <detail::JobCallable F>
  void spawn(Counter& counter, F&& fn, std::stop_token stop, Priority priority = Priority::Normal) {
    spawn(counter, detail::Stoppable<std::decay_t<F>>{std::forward<F>(fn), std::move(stop)},
          priority);
  }

  /// The stop token the calling job was spawned with (`spawn(counter, fn, token)`), or an
  /// empty token (`stop_possible()` false) for a job spawned without one, or when the caller
  /// is not a job. Poll it in long computations that neither wait nor yield.
  /// Suspends: no. Thread-safety: reads the calling job's state only.
  /// \return a copy of the calling job's stop token.
  [[nodiscard]] std::stop_token stop_token() const noexcept;

  /// `spawn` with per-spawn options: the priority, the stack class the job runs on and a name
  /// (see `JobOptions`). Same contract as `spawn`, and Errors: `Error` (`InvalidArgument`)
  /// when `options.stack_class` names no class of this system (nothing is queued then).
  /// \param counter gets one unit now, signalled when the job ends.
  /// \param options how to spawn the job.
  /// \param fn the job.
  template <detail::JobCallable F>
  void spawn(Counter& counter, const JobOptions& options, F&& fn) {
    detail::check_stack_class(scheduler_, options.stack_class);
    detail::JobRecord* record = detail::make_record(scheduler_, counter, std::forward<F>(fn));
    record->name = options.name;
    detail::submit_one_in_class(scheduler_, counter, record, options.priority, options.stack_class);
  }

  /// Starts one child job per element of `jobs` (each element copied), all signalling `counter`.
  /// Cheaper than repeated spawn: the counter is added to once and parked workers are woken
  /// once per chunk of 64. Same contract as the single spawn. All or nothing: every element is
  /// copied before anything is added or queued, so if a copy throws, the copies made so far
  /// are destroyed, `counter` is unchanged and no job runs.
  /// \param counter gets one unit per element of `jobs`.
  /// \tparam F the job type (the span's element type, may be const).
  /// \tparam Extent the span's extent, fixed (a C array, a `std::array`) or dynamic.
  /// \param jobs the jobs, each copied into a job record.
  /// \param priority the queue the jobs go into.
  template <detail::JobCallable F, std::size_t Extent>
  void spawn(Counter& counter, std::span<F, Extent> jobs, Priority priority = Priority::Normal) {
    detail::submit_span(scheduler_, counter, std::span<F>(jobs), priority);
  }

  /// `co_await ctx.wait(counter)`: resumes when `counter` is zero; rethrows its exception.
  /// See `WaitAwaiter` for where the coroutine resumes. Zero allocation on a fiber.
  /// \param counter the counter to wait for; it must outlive the `co_await`.
  /// \return the awaiter to `co_await` at once.
  [[nodiscard]] WaitAwaiter wait(Counter& counter) noexcept { return {counter, &scheduler_}; }

  /// `co_await ctx.wait(counter, target)`: resumes once the count is at or below `target`.
  /// See `ValueWaitAwaiter` for where the coroutine resumes and what it costs.
  /// \param counter the counter to watch; it must outlive the `co_await`.
  /// \param target the count (>= 0) at or below which the coroutine resumes.
  /// \return the awaiter to `co_await` at once.
  [[nodiscard]] ValueWaitAwaiter wait(Counter& counter, std::int64_t target) noexcept {
    return {counter, target, &scheduler_};
  }

  /// `co_await ctx.sleep_for(duration)`: resumes once `duration` has passed (at once for a
  /// duration <= 0). See `SleepAwaiter` for where it resumes; accuracy as
  /// `this_fiber::sleep_until`. No allocation.
  /// \param duration how long to sleep (any std::chrono unit).
  /// \return the awaiter to `co_await` at once.
  template <class Rep, class Period>
  [[nodiscard]] SleepAwaiter sleep_for(
      const std::chrono::duration<Rep, Period>& duration) noexcept {
    return {&scheduler_, detail::deadline_after(duration)};
  }
  /// `co_await ctx.sleep_until(time)`: resumes once the steady-clock time `time` has passed.
  /// \param time the deadline.
  /// \return the awaiter to `co_await` at once.
  [[nodiscard]] SleepAwaiter sleep_until(TimerClock::time_point time) noexcept {
    return {&scheduler_, detail::deadline_ns(time)};
  }
  /// `co_await ctx.wait_for(counter, duration)`: true once `counter` is zero, false when
  /// `duration` passed first. See `TimedCounterAwaiter`.
  /// \param counter the counter; it must outlive the `co_await`.
  /// \param duration how long to wait at most.
  /// \return the awaiter to `co_await` at once.
  template <class Rep, class Period>
  [[nodiscard]] TimedCounterAwaiter wait_for(
      Counter& counter, const std::chrono::duration<Rep, Period>& duration) noexcept {
    return {counter, &scheduler_, detail::deadline_after(duration)};
  }
  /// `co_await ctx.wait_until(counter, time)`: as wait_for, with a steady-clock deadline.
  /// \param counter the counter; it must outlive the `co_await`.
  /// \param time the deadline.
  /// \return the awaiter to `co_await` at once.
  [[nodiscard]] TimedCounterAwaiter wait_until(Counter& counter,
                                               TimerClock::time_point time) noexcept {
    return {counter, &scheduler_, detail::deadline_ns(time)};
  }
  /// `co_await ctx.wait_for(event, duration)`: true once `event` is set (auto-reset: taken),
  /// false when `duration` passed first. See `TimedEventAwaiter`.
  /// \param event the event; it must outlive the `co_await`.
  /// \param duration how long to wait at most.
  /// \return the awaiter to `co_await` at once.
  template <class Rep, class Period>
  [[nodiscard]] TimedEventAwaiter wait_for(
      Event& event, const std::chrono::duration<Rep, Period>& duration) noexcept {
    return {event, &scheduler_, detail::deadline_after(duration)};
  }
  /// `co_await ctx.wait_until(event, time)`: as wait_for, with a steady-clock deadline.
  /// \param event the event; it must outlive the `co_await`.
  /// \param time the deadline.
  /// \return the awaiter to `co_await` at once.
  [[nodiscard]] TimedEventAwaiter wait_until(Event& event, TimerClock::time_point time) noexcept {
    return {event, &scheduler_, detail::deadline_ns(time)};
  }

  /// `co_await ctx.blocking(fn)`: runs the blocking `fn()` on this system's blocking-call pool
  /// and resumes with its result on a worker. See `BlockingAwaiter`.
  /// \param fn the blocking function, moved into the awaiter.
  /// \return an awaiter to `co_await` at once.
  template <class F>
  [[nodiscard]] BlockingAwaiter<std::decay_t<F>> blocking(F&& fn) {
    return BlockingAwaiter<std::decay_t<F>>(scheduler_, std::forward<F>(fn));
  }

  /// `co_await ctx.yield()`: lets the work that is ready now run first. See `YieldAwaiter`.
  /// \return the awaiter to `co_await` at once.
  [[nodiscard]] YieldAwaiter yield() noexcept { return YieldAwaiter(scheduler_); }

  /// `co_await ctx.resume_on(thread)`: continues the coroutine on an attached thread (an
  /// `AttachedWorker`, or an `AttachedThread` copied from it). See `ResumeOnAwaiter` (declared
  /// in fiberjob/attached_worker.hpp) for where it runs, the cost and the errors.
  /// \param thread the attached thread to continue on.
  /// \return the awaiter to `co_await` at once.
  [[nodiscard]] ResumeOnAwaiter resume_on(AttachedThread thread) noexcept;

  /// `co_await ctx.resume_on_any()`: continues the coroutine on one of the system's worker
  /// threads, leaving an attached thread. See `ResumeOnAnyAwaiter`
  /// (fiberjob/attached_worker.hpp).
  /// \return the awaiter to `co_await` at once.
  [[nodiscard]] ResumeOnAnyAwaiter resume_on_any() noexcept;

  /// Index of the worker running the caller now, in [0, worker_count), or kNotAWorker when the
  /// caller is not on one of this system's workers. Read it again after a suspension.
  /// \return the worker index, or `kNotAWorker`.
  [[nodiscard]] std::size_t worker_index() const noexcept;

  /// The job system this context belongs to.
  /// \return the owning job system.
  [[nodiscard]] JobSystem& system() const noexcept;

 private:
  friend struct detail::ContextAccess;
  explicit Context(detail::Scheduler& scheduler) noexcept : scheduler_(scheduler) {}

  detail::Scheduler& scheduler_;
};

namespace detail {

/// `co_await` of a structured call's children (spawned through `ctx`): waits for all of them
/// also in a job whose stop was requested (they got the stop too), so none outlives the call;
/// rethrows the first exception one of them threw. The caller checks its stop afterwards.
inline JoinAwaiter join_children(Context& ctx, Counter& children) noexcept {
  return JoinAwaiter(children, &scheduler_of(ctx));
}

}  // namespace detail
}  // namespace fiberjob
