// The fiber switch, what the arriving fiber does for the one it replaced, and the stackful wait
// and yield that suspend the running job through it.

#include "fiber_switch.hpp"

#include "counter_wait_list.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace fiberjob::detail {
namespace {

/// Publishes the fiber we came from, as it asked. Runs on the arriving fiber: see the proof at
/// switch_to.
[[gnu::always_inline]] inline void run_handoff(Fiber* self, Fiber* from, Handoff::Action action,
                                               Counter* counter) {
  switch (action) {
    case Handoff::Action::None:
      break;
    case Handoff::Action::ReleaseToPool:
      from->scheduler->pool(from->stack_class).release(from, self->worker);
      break;
    case Handoff::Action::LinkToCounter:
      CounterWaitList::link(*counter, from->node, self->worker);
      break;
    case Handoff::Action::LinkToQueue: {
      const WaitLinker linker = from->linker;  // before the link: then `from` may run anywhere
      if (!linker.link(linker.object, from->node)) wake_list(&from->node, self->worker);
      break;
    }
    case Handoff::Action::Reschedule: {
      if (from->pinned) {  // an attached thread's stack: only its own thread may resume it
        wake_pinned(from);
        break;
      }
      // release (the deque push): pairs with the acquire of the steal that takes it, after
      // the continuation was stored above (see the proof at switch_to).
      Worker* worker = self->worker;
      push_yielded(*worker, Job::resume(from, from->priority));
      worker->scheduler->notify_from_worker(1);
      break;
    }
  }
}

/// finish_switch's body, inline where a switch returns (switch_now); finish_switch remains for
/// a fiber's entry.
[[gnu::always_inline]] inline void finish_switch_now(Fiber* self, boost::context::fiber&& caller) {
  Fiber* const from = self->handoff.from;
  const Handoff::Action action = self->handoff.action;
  Counter* const counter = self->handoff.counter;
  san_finish_switch(self->san, &from->san);
  from->context = std::move(caller);
  if (state_of(*self) != FiberState::Native) set_state(*self, FiberState::Running);
  if (Worker* worker = self->worker) worker->current = self;
  run_handoff(self, from, action, counter);
}

}  // namespace

void finish_switch(Fiber* self, boost::context::fiber&& caller) {
  finish_switch_now(self, std::move(caller));
}

// Why no fiber is ever published while its stack still runs.
//
// A fiber F is *published* when another thread could start running on its stack: pushed onto
// the pool's free stack (FiberPool::release), linked into a counter's wait list (a signaller may
// then queue Job::Resume(F)), or queued as Job::Resume(F) (yield). All three happen only in
// run_handoff(), and run_handoff() runs only in finish_switch() on the fiber G we switched *to*,
// after resume() below has saved F's registers into F's continuation and moved the stack pointer
// onto G's stack. From that jump on nothing executes on F's stack until F's continuation is
// resumed.
//
// The continuation is stored into F->context (finish_switch: `from->context = ...`)
// *before* run_handoff() publishes F, and every publication is a release operation (pool CAS,
// wait-list CAS, deque/injector push) whose acquire counterpart is what a resumer does before
// touching F->context; so whoever resumes F sees a complete continuation. run_handoff() is G's last
// access to F: after publishing, G touches F only to resume it through the same queues.
//
// Conversely `to` is never running when we switch to it: it comes from the pool or from a
// popped Job::Resume, both published only after its stack stopped (the argument above, applied
// to `to`), and a pop hands an entry to exactly one thread.
//
// Boost.Context makes this natural: the handle of the suspended side is returned only to the side
// that was resumed. Sanitizer annotations (docs/sanitizers.md) bracket the one jump; everything
// between them is inline.
namespace {

/// switch_to's body, inline in suspend(): the switch of every wait and yield then saves and
/// restores no registers of its own.
[[gnu::always_inline]] inline void switch_now(Fiber* from, Fiber* to, Handoff::Action action,
                                              Counter* counter) {
  to->worker = from->worker;
  to->handoff.from = from;
  to->handoff.action = action;
  to->handoff.counter = counter;
  // Thread start and stop (to or from the native stack) are not fiber switches.
  if (state_of(*from) != FiberState::Native && state_of(*to) != FiberState::Native) {
    WorkerStats::bump(from->worker->stats.switches);
  }
  san_start_switch(from->san, to->san);
  boost::context::fiber caller = std::move(to->context).resume();
  // Resumed: possibly on another thread. `from` is a local of this frame, so still right.
  finish_switch_now(from, std::move(caller));
}

}  // namespace

void switch_to(Fiber* from, Fiber* to, Handoff::Action action, Counter* counter) {
  switch_now(from, to, action, counter);
}

namespace {

/// A fiber of a stack class stays the job's while it waits: it may not hold the last one the
/// class may have, or no job of the class could start (its own children included). Returns the
/// pool whose hold the caller ends once resumed (FiberPool::end_hold), or nullptr: a default
/// fiber, or a yield (which stays runnable, so holds nothing that blocks). Errors: Error
/// (FiberPoolExhausted) naming the class.
[[gnu::always_inline]] inline FiberPool* hold_class_fiber(Fiber* self, Handoff::Action action) {
  if (self->stack_class == 0 || action == Handoff::Action::Reschedule) [[likely]]
    return nullptr;
  Scheduler& scheduler = *self->worker->scheduler;
  FiberPool* pool = &scheduler.pool(self->stack_class);
  if (!pool->hold_while_suspended()) throw_class_exhausted(scheduler, *pool);
  return pool;
}

/// Suspends the running job on `self`: picks what runs next (a ready Job::Resume directly, or a
/// pooled fiber that runs the next job), switches, and lets the next fiber perform `action`.
/// Returns true once resumed; with Reschedule and nothing else ready, returns true at once (a
/// lone yield costs no switch). When a pooled fiber is needed and none can be had, changes
/// nothing (the job it found is queued again) and returns false on an attached thread's own
/// stack (which may block instead), or throws Error (FiberPoolExhausted) on a pooled fiber. Inline
/// in the wait and the yield below, with the switch: no call frame of its own around the stack
/// switch.
[[gnu::always_inline]] inline bool suspend(Fiber* self, Handoff::Action action, Counter* counter) {
  Worker* worker = self->worker;
  FiberPool* const held = hold_class_fiber(self, action);
  // What runs next (a resumed job) could wait for the counters these signals complete.
  worker->combining_signals = false;
  flush_deferred_signals(*worker);
  release_held_chain(self);  // the waiters run_chain still holds must not wait for us
  Scheduler& scheduler = *worker->scheduler;
  const Job next = scheduler.find_job(*worker);
  if (!next && action == Handoff::Action::Reschedule) return true;  // nothing else is ready
  Fiber* to = nullptr;
  if (next && next.kind() == Job::Kind::Resume) {
    to = next.fiber();  // straight to a ready fiber: no pooled fiber needed
  } else {
    to = scheduler.fibers().acquire();
    if (to == nullptr) [[unlikely]] {
      // Back where it was: nothing is lost (an affine job back into its thread's inbox).
      if (next && !give_back_affine(*worker, next)) {
        scheduler.push(next, worker);
        scheduler.notify_from_worker(1);
      }
      if (held != nullptr) held->end_hold();
      // An attached thread has a stack of its own to block on: it parks instead (the caller
      // sees false). A job's fiber cannot block its worker: the error.
      if (self->pinned) return false;
      throw_pool_exhausted(scheduler);
    }
    if (to->index >= scheduler.fibers().warm_count()) [[unlikely]] {
      scheduler.report_pool_grown(*worker);
    }
    to->pending = next;
  }
  // A thread's own stack stays Native (a pooled fiber running an affine job is pinned too).
  if (state_of(*self) != FiberState::Native) set_state(*self, FiberState::Suspended);
  // An attached thread's own code (its stack outside any job run there) is no job: it runs in
  // no recorded slice, so only a job's segment ends here (runs_job_segment, read only when
  // tracing: it gives the same answer after the switch, which restores the state).
  if (scheduler.tracing()) {
    const std::uint64_t now = trace_now_ns();
    // Counted only when tracing: run_job compares it to tell whether the segment of an outer
    // job, run before it on this stack, was cut by this suspension.
    ++self->suspensions;
    // This run segment of the job ends here. relaxed: see Fiber::job_name.
    if (runs_job_segment(*self)) {
      worker->trace.record(TraceKind::Job, self->segment_start_ns, now, self->index,
                           self->job_name.load(std::memory_order_relaxed));
    }
    worker->trace.record(TraceKind::Suspend, now, now, self->index);
  }
  switch_now(self, to, action, counter);
  // Resumed, maybe on another worker: the job runs on its fiber again, a new segment begins.
  if (held != nullptr) held->end_hold();
  if (scheduler.tracing()) {
    self->segment_start_ns = trace_now_ns();
    self->worker->trace.record(TraceKind::Resume, self->segment_start_ns, self->segment_start_ns,
                               self->index);
    // Woken by a signal: the wake arrow's end, bound to the job's next segment (none on an
    // attached thread's own code).
    if (action != Handoff::Action::Reschedule && runs_job_segment(*self)) {
      self->worker->trace.record(TraceKind::ResumeFlow, self->segment_start_ns,
                                 reinterpret_cast<std::uintptr_t>(&self->node), self->index);
    }
  }
  return true;
}

}  // namespace

bool wait_on_fiber(Fiber* self, Counter& counter) {
  check_not_own_counter(self, counter);
  if (CounterWaitList::load_settled(counter) == 0) return true;
  if (has_local_jobs(*self->worker)) {  // inline check: a ping-pong waits with none
    run_own_children(self, counter);
    if (CounterWaitList::load_settled(counter) == 0) return true;
  }
  self->node.kind = WaitNode::Kind::Fiber;
  self->node.fiber = self;
  self->node.next = nullptr;
  self->waiting_on.store(&counter, std::memory_order_relaxed);  // relaxed: diagnostics
  bool suspended = false;
  try {
    suspended = suspend(self, Handoff::Action::LinkToCounter, &counter);
  } catch (...) {  // no fiber to suspend into: the wait did not begin
    self->waiting_on.store(nullptr, std::memory_order_relaxed);  // relaxed: diagnostics
    throw;
  }
  bool check_error = false;
  if (suspended) {
    CounterWaitList::wait_for_linker(self->node);
    // Woken by the drain (the node went onto the list): the counter may be gone unless the
    // drain said it keeps an exception.
    check_error = CounterWaitList::take_error_kept(self->node);
  } else {  // an attached thread with no fiber to run jobs on meanwhile: it parks
    flush_deferred_signals(*self->worker);
    set_phase(*self->worker, WorkerPhase::Parked);  // as a park in find_work: it sleeps
    check_error = CounterWaitList::wait_on_thread(counter);
    set_phase(*self->worker, WorkerPhase::Running);  // back in its job
  }
  self->waiting_on.store(nullptr, std::memory_order_relaxed);  // relaxed: diagnostics
  return check_error;
}

bool wait_on_fiber_linked(Fiber* self, WaitLinker linker) {
  self->node.kind = WaitNode::Kind::Fiber;
  self->node.fiber = self;
  self->node.next = nullptr;
  self->linker = linker;
  // relaxed: diagnostics only (the reports read them from any thread, pairing with nothing).
  self->waiting_on_what.store(linker.what, std::memory_order_relaxed);
  self->waiting_on_primitive.store(linker.reported(), std::memory_order_relaxed);
  bool suspended = false;
  try {
    suspended = suspend(self, Handoff::Action::LinkToQueue, nullptr);
  } catch (...) {  // no fiber to suspend into: the wait did not begin
    self->waiting_on_primitive.store(nullptr, std::memory_order_relaxed);  // relaxed: as above
    throw;
  }
  self->waiting_on_primitive.store(nullptr, std::memory_order_relaxed);  // relaxed: as above
  return suspended;
}

bool park_own_stack(Fiber* self, WaitLinker linker) noexcept {
  flush_deferred_signals(*self->worker);
  // relaxed: diagnostics only, as in wait_on_fiber_linked.
  self->waiting_on_what.store(linker.what, std::memory_order_relaxed);
  self->waiting_on_primitive.store(linker.reported(), std::memory_order_relaxed);
  set_phase(*self->worker, WorkerPhase::Parked);              // as a park in find_work: it sleeps
  const bool check_error = park_thread_linked(linker, self);  // the same waiter as on its fiber
  set_phase(*self->worker, WorkerPhase::Running);             // back in its job
  self->waiting_on_primitive.store(nullptr, std::memory_order_relaxed);  // relaxed: as above
  return check_error;
}

void yield_on_fiber(Fiber* self) {
  if (self->pinned) return;  // an attached thread's own stack: documented to return at once
  suspend(self, Handoff::Action::Reschedule, nullptr);
}

}  // namespace fiberjob::detail
