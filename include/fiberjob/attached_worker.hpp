#pragma once
/// \file
/// `AttachedWorker`: the calling thread joins a `JobSystem` as one of its workers; thread-affine
/// jobs (`AttachedThread::spawn`, `co_await ctx.resume_on(thread)`) run on that thread only.

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <stop_token>
#include <type_traits>
#include <utility>

#include "fiberjob/config.hpp"
#include "fiberjob/counter.hpp"
#include "fiberjob/detail/job_record.hpp"
#include "fiberjob/detail/stoppable.hpp"
#include "fiberjob/detail/wait_node.hpp"

namespace fiberjob {

class JobSystem;
class AttachedWorker;

namespace detail {
struct Worker;
class Scheduler;

/// While alive, admits one push to the affine inbox of `slot` (a pusher inside the gate):
/// the thread's detach waits for it and then runs what it pushed. Throws Error (AttachMisuse)
/// when the thread attached as `generation` has detached (src/affine.cpp).
class AffineEntry {
 public:
  AffineEntry(Worker& slot, std::uint32_t generation);
  ~AffineEntry();
  AffineEntry(const AffineEntry&) = delete;
  AffineEntry& operator=(const AffineEntry&) = delete;

 private:
  Worker& slot_;
};

/// Adds one unit to `counter` and queues `record` in `slot`'s affine inbox (inside an
/// AffineEntry). On a throw from the add, the record is discarded and nothing is queued.
void submit_affine(Scheduler& scheduler, Worker& slot, Counter& counter, JobRecord* record,
                   Priority priority);
/// ResumeOnAwaiter's parts (src/affine.cpp).
bool on_attached_thread(const Worker& slot, std::uint32_t generation) noexcept;
void suspend_to_attached(WaitNode& node, Worker& slot, std::uint32_t generation,
                         const Scheduler& caller, std::coroutine_handle<> coroutine);
/// ResumeOnAnyAwaiter's parts (src/affine.cpp).
bool on_worker_thread(const Scheduler& scheduler) noexcept;
void suspend_to_workers(WaitNode& node, Scheduler& scheduler, std::coroutine_handle<> coroutine);
}  // namespace detail

/// A copyable reference to one attachment of a thread (an `AttachedWorker`), to pass to jobs:
/// they spawn thread-affine jobs with it (`spawn`) and hop coroutines onto the thread
/// (`co_await ctx.resume_on(thread)`). It stays safe to use after the `AttachedWorker` is gone:
/// every use then throws `Error` (`AttachMisuse`), so a job is never queued where no thread
/// will run it.
/// Thread-safety: any thread, concurrently. Lifetime: the `JobSystem` must outlive every use.
class AttachedThread {
 public:
  /// The attachment `worker` stands for (implicit, so an `AttachedWorker` can be passed
  /// wherever an `AttachedThread` is expected).
  /// \param worker the attached thread's `AttachedWorker`.
  AttachedThread(const AttachedWorker& worker) noexcept;

  /// Starts `fn` (`void(Context&)`, `void()`, `Task<>(Context&)` or `Task<>()`) as a job that
  /// only the attached thread runs; `counter` gets one unit, signalled when the job ends (a
  /// coroutine job: at its final suspend), also when it throws (the exception is kept on the
  /// counter, as for `Context::spawn`).
  /// Where it runs: on the attached thread, when that thread waits (`JobSystem::wait`,
  ///   `this_fiber::wait` on its own stack) or calls `AttachedWorker::run_pending`, first in
  ///   first out among the affine jobs not yet started; work already under way there (a woken
  ///   affine fiber, a `resume_on` hop, inside a wait the jobs the thread's jobs spawned) goes
  ///   first. A plain job that suspends (a `this_fiber` wait or yield)
  ///   continues on the attached thread only. A coroutine job starts there; each later
  ///   `co_await` resumes it where that awaiter says (a counter wait: any worker).
  /// Cost: a lock-free enqueue (moodycamel::ConcurrentQueue, no allocation once the calling
  ///   thread's producer block exists), a counter add, and a wake of the parked workers.
  /// Suspends: no.
  /// Errors: `Error` (`AttachMisuse`) when the thread has detached (its `AttachedWorker` was
  ///   destroyed): nothing is queued; run the job with `Context::spawn` instead, or keep the
  ///   `AttachedWorker` alive until its producers are done. Rethrows an exception from copying
  ///   `fn`; `Error` (`CounterMisuse`).
  /// \param counter gets one unit now, signalled when the job ends.
  /// \param fn the job, copied or moved into the job's record.
  /// \param priority the priority the job resumes at if it suspends (the attached thread
  ///   runs its affine jobs in arrival order).
  template <detail::JobCallable F>
  void spawn(Counter& counter, F&& fn, Priority priority = Priority::Normal) const {
    const detail::AffineEntry entry(*slot_, generation_);  // throws once detached
    detail::JobRecord* record = detail::make_record(*scheduler_, counter, std::forward<F>(fn));
    detail::submit_affine(*scheduler_, *slot_, counter, record, priority);
  }

  /// `spawn` with a stop token, as `Context::spawn(counter, fn, stop)`: once a stop is
  /// requested, the job's waits and yields complete with `Error` (`Cancelled`) and
  /// `ctx.stop_token()` reads it. Same contract, cost (8 bytes more in the job's record) and
  /// errors as the `spawn` above.
  /// \param counter gets one unit now, signalled when the job ends.
  /// \param fn the job, copied or moved into the job's record.
  /// \param stop the job's stop token.
  /// \param priority the priority the job resumes at if it suspends.
  template <detail::JobCallable F>
  void spawn(Counter& counter, F&& fn, std::stop_token stop,
             Priority priority = Priority::Normal) const {
    spawn(counter, detail::Stoppable<std::decay_t<F>>{std::forward<F>(fn), std::move(stop)},
          priority);
  }

  /// The slot's worker index (>= the system's worker_count()).
  /// \return the worker index of the attached thread's slot.
  [[nodiscard]] std::size_t index() const noexcept;

 private:
  friend class ResumeOnAwaiter;
  detail::Worker* slot_;
  detail::Scheduler* scheduler_;
  std::uint32_t generation_;
};

/// `co_await ctx.resume_on(thread)`: continues the awaiting coroutine on an attached thread.
/// * Already on that thread: does not suspend.
/// * Otherwise the coroutine (not the fiber) is queued in the thread's affine inbox and
///   continues when the thread next waits or calls `run_pending` — on its own stack in
///   `run_pending`, on a fiber of its slot while it waits. It stays there until its next
///   suspension: a later `co_await` resumes it where that awaiter says (`resume_on_any` to
///   leave explicitly; a counter wait resumes on any worker).
/// Cost: one lock-free enqueue and a wake of the parked workers; no allocation, no fiber
///   switch (the node lives in this awaiter, in the coroutine frame).
/// Errors: `Error` (`AttachMisuse`), thrown at the `co_await` (the coroutine does not move),
///   when the thread has detached, or when it is attached to another `JobSystem` than the
///   awaiting job's (a job runs only on its own system's threads).
class [[nodiscard]] ResumeOnAwaiter {
 public:
  /// Made by `Context::resume_on`; not for direct use.
  /// \param thread the attached thread to continue on.
  /// \param caller the awaiting job's job system.
  ResumeOnAwaiter(AttachedThread thread, detail::Scheduler& caller) noexcept
      : thread_(thread), caller_(caller) {}
  ResumeOnAwaiter(const ResumeOnAwaiter&) = delete;
  ResumeOnAwaiter& operator=(const ResumeOnAwaiter&) = delete;

  /// \return true when the caller already runs on the attached thread (of its own system).
  bool await_ready() const noexcept {
    return thread_.scheduler_ == &caller_ &&
           detail::on_attached_thread(*thread_.slot_, thread_.generation_);
  }
  /// Queues the coroutine in the thread's affine inbox. Throws `Error` (`AttachMisuse`) when
  /// the thread has detached or belongs to another job system.
  /// \param coroutine the awaiting coroutine.
  void await_suspend(std::coroutine_handle<> coroutine) {
    detail::suspend_to_attached(node_, *thread_.slot_, thread_.generation_, caller_, coroutine);
  }
  /// Nothing to return.
  void await_resume() const noexcept {}

 private:
  AttachedThread thread_;
  detail::Scheduler& caller_;
  detail::WaitNode node_;
};

/// `co_await ctx.resume_on_any()`: continues the awaiting coroutine on one of the system's
/// worker threads (`Config::worker_count`), leaving an attached thread.
/// * On a worker thread already: does not suspend.
/// * Otherwise (an attached thread, or a foreign thread) the coroutine is queued where only
///   worker threads look (first in first out, before their ready jobs), and every parked
///   worker is woken: no attached thread takes it, not even one inside a wait (`js.wait`,
///   `sync_wait`) at that moment. In a system without attached-thread slots
///   (`Config::attachable_threads` = 0) it goes through the injector at its job's priority.
/// Cost: one lock-free enqueue and a wake of the parked workers; no allocation, no fiber
///   switch.
class [[nodiscard]] ResumeOnAnyAwaiter {
 public:
  /// Made by `Context::resume_on_any`; not for direct use.
  /// \param scheduler the job system to continue on.
  explicit ResumeOnAnyAwaiter(detail::Scheduler& scheduler) noexcept : scheduler_(scheduler) {}
  ResumeOnAnyAwaiter(const ResumeOnAnyAwaiter&) = delete;
  ResumeOnAnyAwaiter& operator=(const ResumeOnAnyAwaiter&) = delete;

  /// \return true on one of the system's worker threads already.
  bool await_ready() const noexcept { return detail::on_worker_thread(scheduler_); }
  /// Queues the coroutine in the system's injector.
  /// \param coroutine the awaiting coroutine.
  void await_suspend(std::coroutine_handle<> coroutine) {
    detail::suspend_to_workers(node_, scheduler_, coroutine);
  }
  /// Nothing to return.
  void await_resume() const noexcept {}

 private:
  detail::Scheduler& scheduler_;
  detail::WaitNode node_;
};

/// While alive, makes the thread that created it one of `system`'s workers — as a game's main
/// thread is in FiberTaskingLib and enkiTS, or a thread inside `tbb::task_arena::execute`:
/// * `JobSystem::run` and `Context::spawn` from this thread push onto its own work-stealing
///   deque (the other workers steal from it) instead of going through the injector;
/// * `JobSystem::wait` and `this_fiber::wait` run jobs until the counter reaches zero: first the
///   waited-for jobs on this thread's stack, then any job on pooled fibers; then they return on
///   this thread, on its own stack (the thread's stack never moves to another thread; a job the
///   thread runs on a pooled fiber may, after a suspension, like any job);
/// * `this_fiber::yield` on the thread's own stack returns at once;
/// * `JobSystem::current_worker_index()` is this slot's index, in
///   [worker_count(), worker_count() + Config::attachable_threads).
/// Jobs left on its deque when the thread is not waiting (or has detached) are run by the
/// other workers. Thread-affine jobs (`spawn`, `co_await ctx.resume_on(attached)`) wait in a
/// separate inbox that only this thread takes from: it runs them while it waits and at
/// `run_pending` (see docs/api.md, "Thread-affine jobs"). With `Config::worker_count` = n - 1 and
/// one attached thread, n threads run jobs, like a TBB arena of n slots entered by the main thread.
///
/// Thread-safety: create and destroy on the same thread; at most `Config::attachable_threads`
/// at once per system. Destroy every one before the `JobSystem` (its destructor aborts with a
/// message otherwise). Allocation: none (slots, like workers, exist from the system's start).
class AttachedWorker {
 public:
  /// Attaches the calling thread to a free slot of `system` (sets up a signal stack for fiber
  /// stack overflow reports, as on worker threads).
  /// Errors: `Error` (`AttachMisuse`) when every slot is taken (the message names
  /// Config::attachable_threads) or when the thread is already a worker of any job system
  /// (a worker thread, a job, or attached); std::system_error if the signal stack cannot be
  /// mapped.
  /// \param system the job system to join; must outlive this object.
  explicit AttachedWorker(JobSystem& system);
  /// Detaches the thread. First closes the affine inbox (later `spawn` and `resume_on` through
  /// any `AttachedThread` of this attachment throw `Error` (`AttachMisuse`)), then runs every
  /// affine job already queued and waits, running jobs meanwhile, until the affine jobs that
  /// suspended on this thread have ended: none is lost. Aborts with a message when called on
  /// another thread than the one that attached, or from inside a job.
  ~AttachedWorker();
  AttachedWorker(const AttachedWorker&) = delete;
  AttachedWorker& operator=(const AttachedWorker&) = delete;

  /// The slot's worker index (>= system.worker_count()).
  /// \return the worker index, in [worker_count(), worker_count() + attachable_threads).
  [[nodiscard]] std::size_t index() const noexcept;

  /// Starts `fn` as a job only this thread runs: `AttachedThread(*this).spawn(...)`, see there.
  /// \param counter gets one unit now, signalled when the job ends.
  /// \param fn the job, copied or moved into the job's record.
  /// \param priority the priority the job resumes at if it suspends.
  template <detail::JobCallable F>
  void spawn(Counter& counter, F&& fn, Priority priority = Priority::Normal) const {
    AttachedThread(*this).spawn(counter, std::forward<F>(fn), priority);
  }

  /// `spawn` with a stop token: `AttachedThread(*this).spawn(counter, fn, stop, priority)`.
  /// \param counter gets one unit now, signalled when the job ends.
  /// \param fn the job, copied or moved into the job's record.
  /// \param stop the job's stop token.
  /// \param priority the priority the job resumes at if it suspends.
  template <detail::JobCallable F>
  void spawn(Counter& counter, F&& fn, std::stop_token stop,
             Priority priority = Priority::Normal) const {
    AttachedThread(*this).spawn(counter, std::forward<F>(fn), std::move(stop), priority);
  }

  /// Runs the thread-affine jobs queued for this thread now: the plain and coroutine jobs
  /// spawned with `spawn` that were in the inbox when the call began, in arrival order (jobs
  /// queued meanwhile wait for the next call), and, before the first of them and after each,
  /// the work already under way that was woken by then: coroutines that hopped here with
  /// `resume_on`, and affine plain jobs that suspended and were woken. For a frame loop: call
  /// it once per frame. Plain jobs run inline on this thread's own stack.
  /// Blocks: never waits for jobs to arrive; returns 0 at once when none are queued. But it
  ///   returns only after each plain job it ran inline has ended: a job that waits keeps it
  ///   inside until that wait completes (the thread runs other jobs meanwhile, as
  ///   `JobSystem::wait` does). So such a job must not wait for something only the code after
  ///   `run_pending` does (an Event set later in the frame): that deadlocks; the hang watchdog
  ///   (`Config::hang_report_after_ms`) names the wait in its report.
  /// Cost: two loads when the inbox is empty; per job, a dequeue.
  /// Errors: `Error` (`AttachMisuse`) when called on another thread than the attached one, or
  ///   from inside a job. Exceptions of the jobs go to their counters, as for any job.
  /// \return how many affine jobs (or resumptions) ran.
  std::size_t run_pending();

 private:
  friend class AttachedThread;
  detail::Worker* slot_;
  std::uint32_t generation_;
};

}  // namespace fiberjob
