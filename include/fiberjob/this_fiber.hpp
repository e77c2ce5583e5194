#pragma once
/// \file
/// Stackful suspension for plain (non-coroutine) job code, at any call depth.

#include "fiberjob/counter.hpp"

namespace fiberjob::this_fiber {

/// Suspends the calling job until `counter` reaches zero, then rethrows the first exception a
/// job on that counter threw (if any).
/// Suspends: yes, unless the counter is already zero — the fiber is linked into the counter's
///   wait list and the worker thread runs other jobs; the job resumes on any worker (see
///   `Context::worker_index()`). Never blocks the worker thread.
/// Thread-safety: any number of jobs and threads may wait on one counter at once.
/// Allocation: none (the wait node lives in the fiber).
/// Stack: before suspending, the job runs its own children (jobs of `counter` on top of this
///   worker's deque) inline on its stack, but only while less than half of the stack is used;
///   so spawn-and-wait nests to any depth without overflowing (deeper levels take more fibers),
///   as long as each job fits in half of `Config::fiber_stack_size` (see there).
///   On an attached thread's own stack (`AttachedWorker`), when no fiber can be had to run other
///   jobs meanwhile, the thread parks until the counter is zero instead of throwing.
/// Errors: `Error` (`NotOnFiber`) when not called from a job — use `JobSystem::wait` on a plain
///   thread; `Error` (`CounterMisuse`) when `counter` is the one the calling job's own end
///   signals (the wait could never return); `Error` (`FiberPoolExhausted`) when the wait must
///   suspend and the fiber pool is at `Config::max_fiber_count` (or the OS refused more stacks):
///   thrown before the wait begins, nothing is lost, the message names the field and is also
///   written once to stderr; the counter's captured exception; `Error` (`Cancelled`) in a job
///   spawned with a stop token whose stop was requested — before a wait that must suspend (at
///   once, even if the counter never reaches zero) or while it waited (the stop wakes the wait
///   promptly, even if the counter never reaches zero). A counter already at zero completes
///   the wait normally also after a stop (with its captured exception, if any), as a
///   `co_await` of it does.
/// \param counter the counter to wait for; it must outlive the wait.
void wait(Counter& counter);

/// Reschedules the calling job behind the work that is ready now: its fiber goes onto this
/// worker's yield queue (FIFO, oldest first), which the worker looks at after its own deque,
/// the injector and the other workers' deques (and first every few looks, so a yielder is not
/// starved by work that keeps coming), and which idle workers may take from; so two
/// yielding jobs on one worker interleave. A job that is alone keeps running at once, and on an
/// attached thread's own stack (`AttachedWorker`) the call returns at once.
/// Suspends: yes, when other work is ready; resumes on any worker.
/// Errors: `Error` (`Cancelled`), before yielding, in a job spawned with a stop token whose
///   stop was requested (a stop requested while the job is queued is seen by its next wait or
///   yield); `Error` (`NotOnFiber`) when not called from a job; `Error` (`FiberPoolExhausted`)
///   when other work is ready, a pooled fiber is needed to run it, and the pool is at
///   `Config::max_fiber_count` (or the OS refused more stacks): the work found is queued again,
///   nothing is lost, and the message is also written once to stderr.
void yield();

/// True when the caller is a job running on a fiberjob fiber (so `wait` and `yield` may be
/// called). Suspends: no.
/// \return true on a job's fiber, and on a thread attached with `AttachedWorker`.
[[nodiscard]] bool on_fiber() noexcept;

}  // namespace fiberjob::this_fiber
