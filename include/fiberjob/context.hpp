#pragma once
/// \file
/// `Context`: what every job receives — spawning nested jobs, where it runs.

#include <cstddef>
#include <span>
#include <utility>

#include "fiberjob/config.hpp"
#include "fiberjob/counter.hpp"
#include "fiberjob/detail/job_record.hpp"

namespace fiberjob {

class JobSystem;

namespace detail {
struct Fiber;
struct ContextAccess;
Scheduler& scheduler_of(const Fiber& fiber) noexcept;
}  // namespace detail

/// Handed by reference to every job (`void(Context&)`). It names the fiber the job runs on, not
/// the worker thread: after a suspension (`this_fiber::wait`, `this_fiber::yield`) the job may
/// continue on another worker, and `worker_index()` tells the current one.
///
/// Suspending from a job: `this_fiber::wait(counter)` and `this_fiber::yield()` (stackful: any
/// call depth, the worker thread runs other jobs meanwhile).
///
/// Thread-safety: use it only from the job it was given to; it dies when that job returns.
class Context {
 public:
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// Starts `fn` (a `void(Context&)` or `void()` callable, copied or moved into the job) as a
  /// child job; `counter` gets one unit, signalled when the job ends (also when it throws: the
  /// first exception is kept on the counter and rethrown to its waiters).
  /// The job goes onto this worker's deque (LIFO for this worker, stealable by others).
  /// Suspends: no. Allocation: none for callables up to 48 bytes (alignment <= 16) once warm;
  ///   a larger callable is boxed with `new`.
  /// Errors: rethrows an exception from copying `fn`; `Error` (`CounterMisuse`) for a counter
  ///   that was over-signalled. Nothing is queued when it throws.
  template <detail::JobCallable F>
  void spawn(Counter& counter, F&& fn, Priority priority = Priority::Normal) {
    detail::Scheduler& scheduler = detail::scheduler_of(*fiber_);
    detail::JobRecord* record = detail::make_record(scheduler, counter, std::forward<F>(fn));
    detail::submit(scheduler, counter, std::span<detail::JobRecord* const>(&record, 1), priority);
  }

  /// Starts one child job per element of `jobs` (each element copied), all signalling `counter`.
  /// Cheaper than repeated spawn: the counter is added to once per chunk of 64 and parked workers
  /// are woken once per chunk. Same contract as the single spawn.
  template <detail::JobCallable F>
  void spawn(Counter& counter, std::span<F> jobs, Priority priority = Priority::Normal) {
    detail::submit_span(detail::scheduler_of(*fiber_), counter, jobs, priority);
  }

  /// Index of the worker running the job right now, in [0, worker_count). Read it again after a
  /// suspension: the job may have moved. Suspends: no.
  [[nodiscard]] std::size_t worker_index() const noexcept;

  /// The job system running this job.
  [[nodiscard]] JobSystem& system() const noexcept;

 private:
  friend struct detail::ContextAccess;
  explicit Context(detail::Fiber* fiber) noexcept : fiber_(fiber) {}

  detail::Fiber* fiber_;
};

}  // namespace fiberjob
