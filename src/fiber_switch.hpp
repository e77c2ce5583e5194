#pragma once
// The one fiber switch, the stackful wait and yield (which suspend the running job, with the
// switch inline), and the entry of every pooled fiber.

#include <cstdint>

#include "fiber.hpp"
#include "fiber_pool.hpp"
#include "fiberjob/awaiters.hpp"

namespace fiberjob::detail {

/// Switches the current thread from `from` (running now) to `to` (suspended, not published
/// anywhere), leaving the hand-off {from, action, counter} for `to` to perform on arrival.
/// Returns when something switches back to `from` — possibly on another thread. Proof of
/// safety: fiber_switch.cpp. (The hand-off is written and read field by field: copying it as
/// one struct makes the compiler load 16 bytes right after narrower stores, a store-forwarding
/// stall at every switch.)
void switch_to(Fiber* from, Fiber* to, Handoff::Action action, Counter* counter = nullptr);

/// First thing on arrival at `self` (after a switch_to, or at a fiber's entry): finishes the
/// sanitizer switch, stores the continuation of the fiber we came from, then performs its
/// handoff (publishes it).
void finish_switch(Fiber* self, boost::context::fiber&& caller);

/// Work-first waiting (as TBB's and enkiTS's waits help): while `counter` is pending and the
/// newest job on this worker's deque is one that `counter` counts — a child the waiting job
/// spawned — run it inline on this fiber: no switch, no pooled fiber. Stops at the first job of
/// any other counter: running unrelated work on a waiting stack could make it wait for
/// something that needs the outer job (a deadlock the plain suspension does not have). Stops
/// too when less than half of the stack is left (has_stack_headroom), so that nesting depth
/// never overflows the stack: the waiter then suspends and the child runs on another fiber.
void run_own_children(Fiber* self, Counter& counter);

/// Continues the suspended coroutine of `job` (Job::ResumeCoroutine) inline on `self`: its
/// co_awaits suspend only the coroutine; a this_fiber call inside it may suspend the fiber.
void resume_coroutine(Fiber* self, Job job) noexcept;

/// Runs a thread-affine job (a Run or ResumeCoroutine taken from the attached thread's inbox)
/// on `self`, a fiber of the attached thread's slot or its own stack: `self` is pinned while it
/// runs, so a plain job (or a coroutine's stackful wait) that suspends continues on this thread
/// only (wake_pinned). Then counts the job done (finish_affine). What describes the job `self`
/// ran before is restored afterwards.
void run_affine(Fiber* self, Job job) noexcept;

/// Runs a Job::ResumeChain on `self`: peels a chunk of at most 32 waiters off the chain,
/// queues the rest on this worker's deque (stealable), then makes the chunk's waiters runnable
/// in list order; coroutines of this job system at the chain's priority resume inline. The
/// chunk's waiters not reached yet are held in Fiber::held_chain.
void run_chain(Fiber* self, Job job) noexcept;

/// Queues the waiters of run_chain's chunk that `self` has not made runnable yet
/// (Fiber::held_chain) as a Job::ResumeChain on its worker's deque. Called before the fiber
/// suspends.
void release_held_chain(Fiber* self) noexcept;

/// True when the fiber's stack has room for a child job run inline on it: less than half of
/// the stack is in use below the caller's frame. oneTBB bounds nested stealing the same way
/// (its stealing threshold is half the stack below the stack base: arena's
/// calculate_stealing_threshold). A stack of unknown bounds (stack_bottom nullptr) has room.
inline bool has_stack_headroom(const Fiber* self) noexcept {
  const auto here = reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0));
  const auto bottom = reinterpret_cast<std::uintptr_t>(self->stack_bottom);
  return bottom == 0 || here - bottom > self->stack_size / 2;
}

/// Throws Error (FiberPoolExhausted): a wait or yield needs a fiber and the pool cannot give
/// one (Config::max_fiber_count fibers in use, or the OS refused more).
/// The first time, the message also goes to stderr.
[[noreturn]] void throw_pool_exhausted(Scheduler& scheduler);

/// Throws Error (FiberPoolExhausted) naming the stack class of `pool`: a plain job on one of
/// its fibers would hold the last fiber the class may have while it waits
/// (FiberPool::hold_while_suspended). The first time, the message also goes to stderr.
[[noreturn]] void throw_class_exhausted(Scheduler& scheduler, const FiberPool& pool);

/// Throws Error (Cancelled) for `call` when the stop of the job running on `self` (spawned with
/// a stop token) was requested. Inline: one load for a job without a token.
inline void throw_if_job_stopped(const Fiber* self, const char* call) {
  if (stop_requested(self->job_stop)) [[unlikely]]
    throw_cancelled(call);
}

/// Throws Error (CounterMisuse): the running job waits on the counter it signals itself.
[[noreturn]] void throw_own_counter_wait();

/// Throws Error (CounterMisuse) when `counter` is the one the job running on `self` signals
/// when it ends: a wait on it could never return. Inline: one compare on every wait.
inline void check_not_own_counter(const Fiber* self, const Counter& counter) {
  if (&counter == self->job_counter) [[unlikely]]
    throw_own_counter_wait();
}

/// The stackful wait of this_fiber::wait and JobSystem::wait on a fiber (without the rethrow):
/// returns once `counter` is zero. Errors: Error (CounterMisuse) for the job's own counter;
/// Error (FiberPoolExhausted) when no fiber can be had to run other work meanwhile.
/// \return whether the caller must look at the counter's exception (rethrow_if_error): true
///   when the wait completed without linking (the count was zero, or became zero while the
///   job's own children ran inline: the caller's own call keeps the counter alive) or the
///   drain that woke it saw an exception kept (WaitNode::error_kept); false otherwise, and
///   then the counter may already be destroyed (its last signal may free it).
[[nodiscard]] bool wait_on_fiber(Fiber* self, Counter& counter);

/// wait_on_fiber_stoppable's path for a job that can be stopped: links a stop block's node
/// onto the counter's lock-free list, with a stop callback that wakes it (stop_wake.cpp).
/// Errors: as wait_on_fiber. \return as wait_on_fiber (false also when the stop ended the
///   wait: the caller throws Cancelled then).
[[nodiscard]] bool wait_on_fiber_with_stop(Fiber* self, Counter& counter);

/// The stackful wait of this_fiber::wait and JobSystem::wait: a job whose token can be stopped
/// (stop_possible()) takes wait_on_fiber_with_stop, so a stop ends a wait already suspended;
/// other jobs take wait_on_fiber. Inline, so the usual wait keeps its frames (the work-first
/// wait's stack headroom) and pays one load and a compare. Errors: as wait_on_fiber.
/// \return as wait_on_fiber.
[[nodiscard]] inline bool wait_on_fiber_stoppable(Fiber* self, Counter& counter) {
  if (stop_possible(self->job_stop)) [[unlikely]] {
    return wait_on_fiber_with_stop(self, counter);
  }
  return wait_on_fiber(self, counter);
}

/// The stackful wait of the other primitives (Event, Mutex, ...): suspends `self` and lets the
/// next fiber run `linker` on its node. Returns true once woken (or at once when the linker
/// linked nothing); false, with nothing linked, on an attached thread's own stack when no
/// fiber can be had (the caller then parks the thread). Errors: Error (FiberPoolExhausted)
/// on a pooled fiber when no fiber can be had. The diagnostics name `linker.reported()`.
bool wait_on_fiber_linked(Fiber* self, WaitLinker linker);

/// The thread form of a wait (a plain thread, or an attached thread's own stack when no fiber
/// can be had): links a Thread node owned by `token` through `linker` and, when it linked,
/// parks on the node's futex until a waker (the primitive, a timer, or the stop callback of a
/// still armed StopWait) wakes it. Never suspends a fiber; never throws.
/// \return for a counter's linker, as wait_on_fiber: true when nothing was linked or the
///   drain that woke the node saw an exception kept (WaitNode::error_kept).
bool park_thread_linked(WaitLinker linker, const void* token) noexcept;

/// The own-stack park of an attached thread whose wait_on_fiber_linked(self, linker) found no
/// fiber (returned false): applies its deferred signals, then parks the thread as
/// park_thread_linked(linker, self) does, with the wait noted in `self` (Fiber::waiting_on_what,
/// waiting_on_primitive) meanwhile, as a suspended fiber's is, so that write_diagnostics, the
/// hang watchdog and the gdb extension see what the thread's own stack waits on. Never throws.
/// \return as park_thread_linked.
bool park_own_stack(Fiber* self, WaitLinker linker) noexcept;

/// The stackful yield of this_fiber::yield. Errors: Error (FiberPoolExhausted).
void yield_on_fiber(Fiber* self);

/// Entry of every pooled fiber (FiberEntry): the dispatch loop until retired.
boost::context::fiber fiber_entry(Fiber* self, boost::context::fiber&& caller);

/// The fiber running the calling job, or nullptr when the caller is not a job.
Fiber* current_fiber() noexcept;

}  // namespace fiberjob::detail
