// The dispatch loop every pooled fiber runs, and how a Job::Run is executed inline on it.

#include <coroutine>
#include <utility>

#include "platform/futex.hpp"

#include "await_chain_access.hpp"
#include "context_access.hpp"
#include "counter_wait_list.hpp"
#include "fiber_switch.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace fiberjob::detail {
namespace {

/// Ends a plain job: returns its record and signals its counter, last (a waiter may destroy
/// the counter as soon as it sees zero). With `defer`, the dispatch loop's case, the signal is
/// held while this worker goes on with jobs of the same counter (Worker::deferred_counter).
/// The worker is read now, not kept from the start: a job that suspended may finish on another
/// worker.
void end_job(Fiber* self, JobRecord* record, bool defer) noexcept {
  Counter* counter = record->counter;
  Worker* worker = self->worker;
  worker->scheduler->records().release(worker->records, record);
  if (!defer) {
    CounterWaitList::signal(*counter, worker);
    return;
  }
  defer_signal(*worker, *counter);
}

/// True when `job` is a plain job of the counter `worker` holds deferred signals for: running
/// it first cannot delay that counter's zero (the job is pending itself).
bool continues_deferred(const Worker& worker, Job job) noexcept {
  return job.kind() == Job::Kind::Run && job.record()->counter == worker.deferred_counter;
}

/// Stops the process when the code that just ran on `self` (a job, or a coroutine's run
/// segment) left a Mutex locked through plain lock(): the lock's owner is the pooled fiber,
/// so the next job on it would own the lock, and a coroutine resumes on any fiber.
void check_no_plain_lock_left(const Fiber* self, std::uint32_t locks_before,
                              bool coroutine) noexcept {
  if (self->plain_locks == locks_before) return;
  die_with(coroutine
               ? "fiberjob: a coroutine suspended (co_await) or ended while holding a Mutex "
                 "locked with plain lock() (std::scoped_lock, std::lock_guard, "
                 "std::unique_lock): it may resume on another fiber, which does not own the "
                 "lock. In a coroutine lock with `auto guard = co_await m.scoped_lock();`, or "
                 "unlock before the co_await."
               : "fiberjob: a job ended while holding a Mutex locked with plain lock() (or "
                 "try_lock): fibers are pooled, so the next job on this fiber would own it. "
                 "Unlock before the job returns (std::scoped_lock or std::lock_guard do it), "
                 "or hand the work that needs the lock to one job.");
}

/// Tracing: the segment of the code that ran on a fiber before a job run nested on its stack
/// (an outer job that waits: run_own_children, run_affine). It goes on from where it was once
/// the job ends, unless the job suspended the stack: then it goes on from the job's last resume
/// (segment_start_ns as the resume left it), on the track of the worker it resumed on, and its
/// slice never spans the suspension. Kept by run_job rather than by the nested callers, so that
/// a run without tracing pays nothing for it.
struct OuterSegment {
  std::uint64_t start_ns;
  std::uint32_t suspensions;  ///< Fiber::suspensions before the job
};

/// run_job's start when tracing: keeps the outer segment in `outer`, begins the job's segment
/// and records the end of the spawn's flow arrow. Out of line: only when tracing.
[[gnu::noinline]] void trace_job_start(Fiber* self, const JobRecord* record,
                                       OuterSegment& outer) noexcept {
  outer.start_ns = self->segment_start_ns;
  outer.suspensions = self->suspensions;
  self->segment_start_ns = trace_now_ns();
  // The end of the spawn's flow arrow, keyed by the record (trace.hpp, TraceKind::RunFlow).
  self->worker->trace.record(TraceKind::RunFlow, self->segment_start_ns,
                             reinterpret_cast<std::uintptr_t>(record), self->index);
}

/// run_job's end when tracing: records the job's last run segment (the job may have moved, so
/// on the current worker) unless a coroutine job that ended in it recorded it already
/// (finish_task_job, before its signal), then lets the outer segment go on.
[[gnu::noinline]] void trace_job_end(Fiber* self, bool ended, const OuterSegment& outer) noexcept {
  if (!std::exchange(self->segment_recorded, false)) {
    // A coroutine job (not ended: its final suspend ends it) ran its first segment: named
    // `coroutine`, as its later ones, unless it has a name.
    self->worker->trace.record(ended ? TraceKind::Job : TraceKind::Coroutine,
                               self->segment_start_ns, trace_now_ns(), self->index,
                               self->job_name.load(std::memory_order_relaxed));
  }
  if (self->suspensions == outer.suspensions) self->segment_start_ns = outer.start_ns;
}

/// Ends what a plain job left in the JobRoot it ran with (`root`: the fiber's, Fiber::root, or
/// the one kept for the children a waiting job runs, KeepOuterJob), so that the next job run
/// with it finds it clean: its JobLocal values, and the Mutex owner number a foreign coroutine
/// of the job took. Out of line: most jobs leave nothing.
[[gnu::noinline]] void clean_root(JobRoot& root) noexcept {
  destroy_job_locals(root.locals);
  root.lock_owner = 0;  // a number no other job ever gets: the next job takes a new one
}

/// What the jobs run one after another on a waiting job's stack share (KeepOuterJob): the
/// JobRoot their JobLocal values go into, which each leaves clean, and the outer job's count of
/// plain locks (Fiber::plain_locks), which each must leave as it found it. Kept once for all of
/// them rather than per job: a job checked to leave the count unchanged hands the next one the
/// same count.
struct NestedRun {
  /// Aligned so that its six words are cleared in three 16-byte stores.
  alignas(16) JobRoot root;
  std::uint32_t plain_locks;  // set by KeepOuterJob
};

/// Runs a job inline on `self`: no context switch unless the job suspends its fiber. A
/// coroutine job that suspends (any co_await) returns here early; its final suspend ends it.
/// kNested: run nested on a waiting job's stack (run_own_children, run_affine), with the
/// JobRoot and plain-lock count of `nested`; Fiber::job_stop is nullptr on entry
/// (KeepOuterJob) and left so. Otherwise (the dispatch loop; `nested` unused) the job runs
/// with the fiber's own root (Fiber::root), and no plain lock is held before it (every job and
/// segment before it on this pooled fiber was checked to leave none). The root is clean on
/// entry and the job leaves it clean. kDefer: the job's signal may be held back
/// (Worker::deferred_counter) — the dispatch loop's jobs, and the children a waiting job runs
/// (run_own_children, which applies them before it returns); an affine job's end is
/// signalled at once (its thread may go back to the program's own code next).
template <bool kNested, bool kDefer = !kNested>
void run_job(Fiber* self, Job job, NestedRun* nested) noexcept {
  JobRecord* record = job.record();
  ++self->segment;
  self->priority = job.priority();
  self->job_counter = record->counter;
  // A job spawned with a stop token sets its own (detail::Stoppable) and a plain one restores
  // the one before. A nested job finds nullptr already (KeepOuterJob).
  if (!kNested) self->job_stop = nullptr;
  WorkerStats::bump(self->worker->stats.jobs_run);
  // Read now: the record may be gone after the call. relaxed: see Fiber::job_name.
  self->job_name.store(record->name, std::memory_order_relaxed);
  const bool tracing = self->scheduler->tracing();
  OuterSegment outer;  // written by trace_job_start, read only when tracing: no stores otherwise
  if (tracing) [[unlikely]]
    trace_job_start(self, record, outer);
  bool ended = true;
  try {
    ended = record->invoke(*record, &self->scheduler->context());
  } catch (...) {
    // A coroutine job's Stoppable may have set its token before the call threw.
    if (kNested) self->job_stop = nullptr;
    CounterWaitList::capture(*record->counter, std::current_exception());
  }
  // The count before the job, read only now: no register kept for it across the call.
  check_no_plain_lock_left(self, kNested ? nested->plain_locks : 0, /*coroutine=*/!ended);
  // A coroutine job keeps its JobLocal values in its promise: none in the root. (The dispatch
  // loop's root is named through `self`: no register kept for it across the call.)
  JobRoot& used = kNested ? nested->root : self->root;
  if ((reinterpret_cast<std::uintptr_t>(used.locals) | used.lock_owner) != 0) [[unlikely]] {
    clean_root(used);
  }
  if (tracing) [[unlikely]]
    trace_job_end(self, ended, outer);
  if (ended) {
    end_job(self, record, kDefer);
  } else if (kNested) {
    // A coroutine job that suspended or ended: its token (if it has one) travels with it
    // (WaitNode::job_stop); the next nested job finds none.
    self->job_stop = nullptr;
  }
}

/// Starts a plain job of another stack class on a fiber of that class: the fiber takes the
/// job as its pending one and `self` goes back to its pool (as a switch to a resumed fiber
/// does). When every fiber of the class is in use, the class's pool keeps the job until one
/// comes back (FiberPool::park_job): this worker goes on with other work, or parks.
void start_on_class_fiber(Fiber* self, Job job) noexcept {
  FiberPool& pool = self->scheduler->pool(job.stack_class());
  Fiber* to = pool.acquire();
  if (to == nullptr) {
    pool.park_job(job, self->worker);
    return;
  }
  to->pending = job;
  // Below this frame nothing stays live while we are in the pool (FiberPool::trim).
  self->live_frames_floor = __builtin_frame_address(0);
  switch_to(self, to, Handoff::Action::ReleaseToPool);
}

/// A fiber of a non-default stack class whose job ended hands the worker to a default fiber
/// and goes back to its own pool, so the few large stacks stay free for the jobs that asked
/// for them. Returns false (and the fiber goes on) when no default fiber is free.
bool leave_class_fiber(Fiber* self) noexcept {
  Fiber* to = self->scheduler->fibers().acquire();
  if (to == nullptr) return false;
  self->live_frames_floor = __builtin_frame_address(0);  // as in start_on_class_fiber
  switch_to(self, to, Handoff::Action::ReleaseToPool);
  return true;
}

}  // namespace

void resume_coroutine(Fiber* self, Job job) noexcept {
  WaitNode* node = job.node();
  self->priority = job.priority();
  // The job's own counter travels with the coroutine: a later co_await on it is still rejected.
  self->job_counter = static_cast<Counter*>(const_cast<void*>(node->job_counter));
  self->job_stop = node->job_stop;
  // A job's innermost task: its job's name (JobOptions::name, kept in the job's root) names
  // this segment, and it no longer waits (JobRoot::waits_on; clear_task_wait, one branch for
  // both). relaxed: see Fiber::job_name and JobRoot::waits_on.
  const char* job_name = nullptr;
  if (node->job_task) {
    JobRoot& root = *job_root_of(node->job_locals);
    job_name = root.name;
    root.waits_on.store(nullptr, std::memory_order_relaxed);
  }
  self->job_name.store(job_name, std::memory_order_relaxed);
  const bool tracing = self->scheduler->tracing();
  if (tracing) {
    self->segment_start_ns = trace_now_ns();
    // The end of the wake's flow arrow, keyed by the node (trace.hpp, TraceKind::ResumeFlow).
    self->worker->trace.record(TraceKind::ResumeFlow, self->segment_start_ns,
                               reinterpret_cast<std::uintptr_t>(node), self->index);
  }
  const std::uint32_t locks_before = self->plain_locks;
  ++self->segment;
  JobLocalEntry** const outer_locals =
      std::exchange(self->job_locals, static_cast<JobLocalEntry**>(node->job_locals));
  // Read before resuming: the node lives in the coroutine's frame.
  std::coroutine_handle<>::from_address(node->coroutine_address).resume();
  self->job_locals = outer_locals;
  check_no_plain_lock_left(self, locks_before, /*coroutine=*/true);
  if (tracing && !std::exchange(self->segment_recorded, false)) {  // see run_job
    self->worker->trace.record(TraceKind::Coroutine, self->segment_start_ns, trace_now_ns(),
                               self->index, self->job_name.load(std::memory_order_relaxed));
  }
}

namespace {

/// The dispatch of a Run job of another stack class, or on an attached thread's slot: runs an
/// affine job (run_affine) or starts the job on a fiber of its class (start_on_class_fiber),
/// and returns false; returns true when the job is an ordinary one for `self` after all (the
/// caller runs it). Out of line: neither is the usual job.
[[gnu::noinline]] bool run_unusual(Fiber* self, Job job) noexcept {
  if (claim_affine(self->worker->inbox.get(), job)) {  // only on an attached thread's slot
    run_affine(self, job);
    return false;
  }
  if (job.stack_class() != 0 && job.stack_class() != self->stack_class) {
    start_on_class_fiber(self, job);
    return false;
  }
  return true;
}

/// The loop of a pooled fiber. kClassFiber: the fiber belongs to a non-default stack class
/// (Fiber::stack_class, fixed), so a default fiber's loop never tests for it.
template <bool kClassFiber>
void dispatch_loop(Fiber* self) {
  while (!self->quit) {
    Job job = std::exchange(self->pending, Job{});
    if (kClassFiber && !job && leave_class_fiber(self)) continue;  // reused since
    Worker* worker = self->worker;
    if (!job) job = self->scheduler->find_job(*worker);
    if (worker->deferred_counter != nullptr && !(job && continues_deferred(*worker, job))) {
      apply_deferred_signals(*worker);
    }
    if (!job) job = self->scheduler->next_job(*worker);
    if (job) set_phase(*worker, WorkerPhase::Running);
    if (!job) {
      // Stopping: give the thread back to its native stack, which returns us to the pool.
      self->live_frames_floor = __builtin_frame_address(0);
      switch_to(self, &worker->native, Handoff::Action::ReleaseToPool);
      continue;
    }
    switch (job.kind()) {
      case Job::Kind::Run:
        // One test for the usual job (default stack class) on a worker thread (no inbox).
        if ((!job.default_stack_class() || worker->inbox != nullptr) && !run_unusual(self, job)) {
          break;
        }
        run_job</*kNested=*/false>(self, job, nullptr);
        break;
      case Job::Kind::Resume:
        // Below this frame nothing stays live while we are in the pool (FiberPool::trim).
        self->live_frames_floor = __builtin_frame_address(0);
        switch_to(self, job.fiber(), Handoff::Action::ReleaseToPool);
        break;
      case Job::Kind::ResumeCoroutine:
        if (claim_affine(worker->inbox.get(), job)) {  // a resume_on hop
          run_affine(self, job);
          break;
        }
        resume_coroutine(self, job);
        break;
      case Job::Kind::ResumeChain:
        run_chain(self, job);
        break;
    }
  }
}

/// While jobs run nested on a waiting job's stack (run_own_children, run_affine), keeps what
/// describes the outer job in the fiber and restores it afterwards, once for all the jobs run
/// there one after another (each sets its own, and no code of the outer job runs between them).
/// Their JobLocal values go into the JobRoot of `nested` (NestedRun), which each leaves clean: a
/// list whose head lives on the fiber's stack, so it follows a job whose fiber migrates. The
/// fiber's stop token is nullptr for them, set once here (run_job<true> leaves it so). The
/// outer trace segment's start is kept by run_job itself, only when tracing.
class KeepOuterJob {
 public:
  KeepOuterJob(Fiber* self, NestedRun& nested) noexcept
      : self_(self),
        priority_(self->priority),
        job_counter_(self->job_counter),
        job_stop_(std::exchange(self->job_stop, nullptr)),
        job_name_(self->job_name.load(std::memory_order_relaxed)),  // relaxed: as above
        job_locals_(std::exchange(self->job_locals, &nested.root.locals)) {
    nested.plain_locks = self->plain_locks;
  }
  ~KeepOuterJob() {
    self_->priority = priority_;
    self_->job_counter = job_counter_;
    self_->job_stop = job_stop_;
    self_->job_name.store(job_name_, std::memory_order_relaxed);  // relaxed: Fiber::job_name
    self_->job_locals = job_locals_;
  }
  KeepOuterJob(const KeepOuterJob&) = delete;
  KeepOuterJob& operator=(const KeepOuterJob&) = delete;

 private:
  Fiber* self_;
  Priority priority_;
  Counter* job_counter_;
  const std::stop_token* job_stop_;
  const char* job_name_;
  JobLocalEntry** job_locals_;
};

}  // namespace

void run_affine(Fiber* self, Job job) noexcept {
  NestedRun nested;
  KeepOuterJob keep(self, nested);
  const bool was_pinned = self->pinned;  // the attached thread's own stack always is
  self->pinned = true;
  if (job.kind() == Job::Kind::Run) {
    run_job</*kNested=*/true>(self, job, &nested);  // keeps the outer trace segment's start
  } else {
    // As run_job does: the outer segment goes on from where it was unless the stack suspended
    // (Fiber::suspensions counts only while tracing, and only then does the start matter).
    const std::uint64_t outer_start_ns = self->segment_start_ns;
    const std::uint32_t outer_suspensions = self->suspensions;
    resume_coroutine(self, job);
    if (self->suspensions == outer_suspensions) self->segment_start_ns = outer_start_ns;
  }
  self->pinned = was_pinned;
  finish_affine(*self->worker);  // pinned: still the slot's thread
}

namespace {

/// run_own_children's look for the next child: the deque holding `worker`'s newest job of the
/// highest priority, or nullptr when all are empty (empty_for_owner: peek_occupied may read it).
/// Unrolled: a child usually waits behind an empty High deque, which this skips in three
/// instructions (a loop took seven).
[[gnu::always_inline]] inline WorkStealingDeque* first_occupied_deque(Worker& worker) noexcept {
  static_assert(kPriorityCount == 3, "one test per priority level");
  if (!worker.deques[0].empty_for_owner()) return &worker.deques[0];
  if (!worker.deques[1].empty_for_owner()) return &worker.deques[1];
  if (!worker.deques[2].empty_for_owner()) return &worker.deques[2];
  return nullptr;
}

/// run_own_children's next child: the newest job of `worker`'s highest occupied priority when
/// it is a plain job of `counter`, popped; an empty Job when `counter` is zero but for the
/// signals this worker holds back for it (the children run before), the stack is deep, or the
/// job there is not ours (another job's is pushed back where it was).
[[gnu::always_inline]] inline Job take_own_child(Fiber* self, Counter& counter) noexcept {
  Worker* worker = self->worker;  // re-read: a child that suspended may have moved us
  // A suspension applied the held signals: they count only while still held by this worker.
  const std::int64_t held = worker->deferred_counter == &counter ? worker->deferred_signals : 0;
  const std::int64_t value = CounterWaitList::load_settled(counter);
  if (value == held) return {};  // zero but for the held ends
  if (held != 0 && value >= CounterWaitList::kValueWaiters) [[unlikely]] {
    // A wait for a value (this_fiber::wait(counter, target)) watches every unit, not only the
    // last: while one is linked, the ends go out at once.
    apply_deferred_signals(*worker);
    if ((value & CounterWaitList::kCountMask) == held) return {};
  }
  if (!has_stack_headroom(self)) return {};  // suspend instead: the child runs on another stack
  // Only the newest job of the highest priority is looked at: anything else there is left.
  WorkStealingDeque* deque = first_occupied_deque(*worker);
  if (deque == nullptr) return {};  // nothing of ours left here (stolen or running elsewhere)
  // A peek first: a woken fiber (Resume) on top is left in place without the pop and
  // push-back. The record of a Run job is read only once popped: until then a thief may
  // take, run and recycle it.
  const Job newest = Job::from_bits(deque->peek_occupied());
  if (newest.kind() != Job::Kind::Run) return {};
  const Job child = Job::from_bits(deque->pop());
  if (!child) return {};  // a thief took it
  // A child of another stack class needs a stack of its own: it is left to the queues.
  if (child.kind() != Job::Kind::Run || child.record()->counter != &counter ||
      (!child.default_stack_class() && child.stack_class() != self->stack_class)) {
    push_local(*worker, child);  // someone else's job: leave it where it was
    return {};
  }
  return child;
}

}  // namespace

void run_own_children(Fiber* self, Counter& counter) {
  Job child = take_own_child(self, counter);
  if (!child) return;
  {
    NestedRun nested;
    KeepOuterJob keep(self, nested);  // once for all the children run here
    do {
      // The child's end signal is held back (Worker::deferred_counter) while the next job run
      // here is another child of `counter`, pending itself: the children run here cost the
      // counter one atomic update, not one each. A child that suspends, or that waits on a
      // counter of its own, applies them first (flush_deferred_signals, defer_signal).
      run_job</*kNested=*/true, /*kDefer=*/true>(self, child, &nested);
      child = take_own_child(self, counter);
    } while (child);
  }
  // Applied before the wait goes on: it reads the count, and may return and let its caller
  // destroy the counter.
  Worker* worker = self->worker;
  if (worker->deferred_counter == &counter) apply_deferred_signals(*worker);
}

boost::context::fiber fiber_entry(Fiber* self, boost::context::fiber&& caller) {
  finish_switch(self, std::move(caller));
  // The dispatch loop's jobs keep their JobLocal values in the fiber's root (run_job<false>);
  // whatever points elsewhere (a nested job, a coroutine's segment) restores this when done.
  self->job_locals = &self->root.locals;
  if (self->stack_class != 0) {
    dispatch_loop<true>(self);
  } else {
    dispatch_loop<false>(self);
  }
  // Retired (FiberPool::retire_all): return to the thread that retired us.
  Fiber* to = self->handoff.from;
  san_start_final_switch(to->san);
  return std::move(to->context);
}

}  // namespace fiberjob::detail
