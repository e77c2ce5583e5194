// The dispatch loop every pooled fiber runs, and how a Job::Run is executed inline on it.

#include <utility>

#include "platform/futex.hpp"

#include "context_access.hpp"
#include "counter_access.hpp"
#include "fiber_switch.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace fiberjob::detail {
namespace {

/// Ends a job however it leaves: returns its record and signals its counter (last, since a
/// waiter may destroy the counter as soon as it sees zero). The worker is read at the end, not
/// kept from the start: a job that suspended may finish on another worker.
class JobEnd {
 public:
  JobEnd(Fiber* fiber, JobRecord* record) noexcept
      : fiber_(fiber), record_(record), counter_(record->counter) {}
  ~JobEnd() {
    Worker* worker = fiber_->worker;
    worker->scheduler->records().release(worker->records, record_);
    CounterAccess::signal(*counter_, worker);
  }
  JobEnd(const JobEnd&) = delete;
  JobEnd& operator=(const JobEnd&) = delete;

 private:
  Fiber* fiber_;
  JobRecord* record_;
  Counter* counter_;
};

/// Runs a job inline on `self`: no context switch unless the job suspends.
void run_job(Fiber* self, Job job) noexcept {
  JobRecord* record = job.record();
  self->priority = job.priority();
  self->job_counter = record->counter;
  WorkerStats::bump(self->worker->stats.jobs_run);
  JobEnd end(self, record);
  Context context = ContextAccess::make(self);
  try {
    record->invoke(*record, &context);
  } catch (...) {
    CounterAccess::capture(*record->counter, std::current_exception());
  }
}

void dispatch_loop(Fiber* self) {
  while (!self->quit) {
    Job job = std::exchange(self->pending, Job{});
    if (!job) job = self->scheduler->next_job(*self->worker);
    if (!job) {
      // Stopping: give the thread back to its native stack, which returns us to the pool.
      Worker* worker = self->worker;
      switch_to(self, &worker->native, Handoff{self, Handoff::Action::ReleaseToPool, nullptr});
      continue;
    }
    switch (job.kind()) {
      case Job::Kind::Run:
        run_job(self, job);
        break;
      case Job::Kind::Resume:
        switch_to(self, job.fiber(), Handoff{self, Handoff::Action::ReleaseToPool, nullptr});
        break;
      case Job::Kind::ResumeCoroutine:
        break;  // not produced yet: the coroutine facade adds it
    }
  }
}

}  // namespace

void run_until_done(Fiber* self, Counter& counter) {
  while (CounterAccess::load_settled(counter) != 0) {
    Worker* worker = self->worker;  // re-read: a switch below may move us
    const Job job = worker->scheduler->find_job(*worker);
    if (!job) {
      for (int i = 0; i < 64; ++i) cpu_relax();
      continue;
    }
    switch (job.kind()) {
      case Job::Kind::Run: {
        // Nested on this stack: keep what describes the outer job.
        const Priority priority = self->priority;
        Counter* job_counter = self->job_counter;
        run_job(self, job);
        self->priority = priority;
        self->job_counter = job_counter;
        break;
      }
      case Job::Kind::Resume:
        self->state = FiberState::Suspended;
        switch_to(self, job.fiber(), Handoff{self, Handoff::Action::Reschedule, nullptr});
        break;
      case Job::Kind::ResumeCoroutine:
        break;  // not produced yet: the coroutine facade adds it
    }
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
