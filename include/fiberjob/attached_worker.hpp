#pragma once
/// \file
/// `AttachedWorker`: the calling thread joins a `JobSystem` as one of its workers.

#include <cstddef>

namespace fiberjob {

class JobSystem;

namespace detail {
struct Worker;
}

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
/// other workers. With `Config::worker_count` = n - 1 and one attached thread, n threads run
/// jobs, like a TBB arena of n slots entered by the main thread.
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
  /// Detaches the thread. Aborts with a message when called on another thread than the one
  /// that attached, or from inside a job.
  ~AttachedWorker();
  AttachedWorker(const AttachedWorker&) = delete;
  AttachedWorker& operator=(const AttachedWorker&) = delete;

  /// The slot's worker index (>= system.worker_count()).
  /// \return the worker index, in [worker_count(), worker_count() + attachable_threads).
  [[nodiscard]] std::size_t index() const noexcept;

 private:
  detail::Worker* slot_;
};

}  // namespace fiberjob
