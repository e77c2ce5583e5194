// The dispatch loop every pooled fiber runs, and how a Job::Run is executed inline on it.

#include <coroutine>
#include <utility>

#include "platform/futex.hpp"

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
  if (worker->deferred_counter == counter) {
    ++worker->deferred_signals;
    return;
  }
  flush_deferred_signals(*worker);
  worker->deferred_counter = counter;
  worker->deferred_signals = 1;
}

/// True when `job` is a plain job of the counter `worker` holds deferred signals for: running
/// it first cannot delay that counter's zero (the job is pending itself).
bool continues_deferred(const Worker& worker, Job job) noexcept {
  return job.kind() == Job::Kind::Run && job.record()->counter == worker.deferred_counter;
}

/// Runs a job inline on `self`: no context switch unless the job suspends its fiber. A
/// coroutine job that suspends (any co_await) returns here early; its final suspend ends it.
void run_job(Fiber* self, Job job, bool defer_signal) noexcept {
  JobRecord* record = job.record();
  self->priority = job.priority();
  self->job_counter = record->counter;
  WorkerStats::bump(self->worker->stats.jobs_run);
  const bool tracing = self->scheduler->tracing();
  if (tracing) self->segment_start_ns = trace_now_ns();
  bool ended = true;
  try {
    ended = record->invoke(*record, &self->scheduler->context());
  } catch (...) {
    CounterWaitList::capture(*record->counter, std::current_exception());
  }
  if (tracing) {  // the last run segment: the job may have moved, so the current worker
    self->worker->trace.record(TraceKind::Job, self->segment_start_ns, trace_now_ns(), self->index);
  }
  if (ended) end_job(self, record, defer_signal);
}

}  // namespace

void resume_coroutine(Fiber* self, Job job) noexcept {
  WaitNode* node = job.node();
  self->priority = job.priority();
  // The job's own counter travels with the coroutine: a later co_await on it is still rejected.
  self->job_counter = static_cast<Counter*>(const_cast<void*>(node->job_counter));
  const bool tracing = self->scheduler->tracing();
  if (tracing) self->segment_start_ns = trace_now_ns();
  // Read before resuming: the node lives in the coroutine's frame.
  std::coroutine_handle<>::from_address(node->coroutine_address).resume();
  if (tracing) {
    self->worker->trace.record(TraceKind::Coroutine, self->segment_start_ns, trace_now_ns(),
                               self->index);
  }
}

namespace {

void dispatch_loop(Fiber* self) {
  while (!self->quit) {
    Worker* worker = self->worker;
    Job job = std::exchange(self->pending, Job{});
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
        run_job(self, job, /*defer_signal=*/true);
        break;
      case Job::Kind::Resume:
        // Below this frame nothing stays live while we are in the pool (FiberPool::trim).
        self->live_frames_floor = __builtin_frame_address(0);
        switch_to(self, job.fiber(), Handoff::Action::ReleaseToPool);
        break;
      case Job::Kind::ResumeCoroutine:
        resume_coroutine(self, job);
        break;
      case Job::Kind::ResumeChain:
        run_chain(self, job);
        break;
    }
  }
}

/// While a child job runs nested on its waiting parent's stack (run_own_children), keeps what
/// describes the outer job in the fiber and restores it afterwards.
class KeepOuterJob {
 public:
  explicit KeepOuterJob(Fiber* self) noexcept
      : self_(self),
        priority_(self->priority),
        job_counter_(self->job_counter),
        segment_start_ns_(self->segment_start_ns) {}
  ~KeepOuterJob() {
    self_->priority = priority_;
    self_->job_counter = job_counter_;
    self_->segment_start_ns = segment_start_ns_;
  }
  KeepOuterJob(const KeepOuterJob&) = delete;
  KeepOuterJob& operator=(const KeepOuterJob&) = delete;

 private:
  Fiber* self_;
  Priority priority_;
  Counter* job_counter_;
  std::uint64_t segment_start_ns_;
};

}  // namespace

void run_own_children(Fiber* self, Counter& counter) {
  while (CounterWaitList::load_settled(counter) != 0) {
    if (!has_stack_headroom(self)) return;  // suspend instead: the child runs on another stack
    Worker* worker = self->worker;          // re-read: a child that suspended may have moved us
    Job child;
    for (std::size_t p = 0; p < kPriorityCount && !child; ++p) {
      WorkStealingDeque& deque = worker->deques[p];
      // A peek first: a woken fiber (Resume) on top is left in place without the pop and
      // push-back. The record of a Run job is read only once popped: until then a thief may
      // take, run and recycle it.
      const Job newest = Job::from_bits(deque.peek());
      if (!newest) continue;
      if (newest.kind() != Job::Kind::Run) return;
      const Job popped = Job::from_bits(deque.pop());
      if (!popped) return;  // a thief took it
      if (popped.kind() == Job::Kind::Run && popped.record()->counter == &counter) {
        child = popped;
      } else {
        push_local(*worker, popped);  // someone else's job: leave it where it was
        return;
      }
    }
    if (!child) return;  // nothing of ours left here (stolen or running elsewhere)
    const KeepOuterJob keep(self);
    run_job(self, child, /*defer_signal=*/false);
  }
}

boost::context::fiber fiber_entry(Fiber* self, boost::context::fiber&& caller) {
  finish_switch(self, std::move(caller));
  dispatch_loop(self);
  // Retired (FiberPool::retire_all): return to the thread that retired us.
  Fiber* to = self->handoff.from;
  san_start_final_switch(to->san);
  return std::move(to->context);
}

}  // namespace fiberjob::detail
