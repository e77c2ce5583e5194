// The awaitables' out-of-line halves, and the end of a coroutine job. Every awaiter is stackless:
// it links the node in the awaiter (or queues it) and the coroutine comes back as
// Job::ResumeCoroutine, on or off our fibers.

#include "fiberjob/awaiters.hpp"

#include <utility>

#include "await_chain_access.hpp"
#include "context_access.hpp"
#include "counter_wait_list.hpp"
#include "fiber_switch.hpp"
#include "fiberjob/detail/external_wait.hpp"
#include "fiberjob/detail/job_record.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace fiberjob::detail {

bool suspend_on_counter(Counter& counter, WaitNode& node, Scheduler* scheduler,
                        std::coroutine_handle<> coroutine, bool cancellable,
                        CounterStopWait* stop_wait) {
  // Stackless everywhere, also on our fibers: the coroutine suspends, not the fiber. The fiber
  // goes back to its dispatch loop (or to whatever resumed the coroutine) and runs other jobs;
  // the last signal queues Job::ResumeCoroutine, which any worker runs inline on the fiber it
  // is on. A suspended coroutine job thus holds no fiber and no stack, and resuming it costs
  // no fiber switch (a game's thousands of per-agent AI coroutines: docs/decisions.md).
  Worker* worker = current_worker();  // looked up again below if run_own_children suspends
  // The awaiters' await_ready read the count only: signals this thread holds back
  // (Worker::deferred_counter) are applied here, first, as Counter::done() does, so that they
  // cannot hold the coroutine (nothing else is set yet: the awaiter goes on as if ready).
  if (worker != nullptr && worker->deferred_counter == &counter) [[unlikely]] {
    apply_deferred_signals(*worker);
    if (CounterWaitList::load_settled(counter) == 0) return false;
  }
  Fiber* const self = running_fiber(worker);
  node.kind = WaitNode::Kind::Coroutine;
  node.job_stop = self != nullptr ? self->job_stop : nullptr;
  // resume_from_counter throws Cancelled. A join (not cancellable) keeps the token in the node
  // all the same: the fiber that resumes the coroutine restores it from there.
  if (cancellable && stop_requested(node.job_stop)) return false;
  if (self != nullptr) {
    check_not_own_counter(self, counter);
    // Work-first, as the stackful wait: the children this coroutine spawned onto our deque run
    // inline first (while the stack has headroom). If that completes the counter, the
    // coroutine resumes at once (false): no link, no queueing, no resume through a worker.
    // The coroutine is suspended meanwhile but published nowhere, so only we can resume it.
    if ((scheduler == nullptr || scheduler == self->scheduler) && has_local_jobs(*worker)) {
      run_own_children(self, counter);
      if (CounterWaitList::load_settled(counter) == 0) return false;
      worker = current_worker();  // a child that waited stackfully may have moved the fiber
    }
  }
  node.coroutine_address = coroutine.address();
  node.scheduler = scheduler != nullptr ? scheduler
                   : self != nullptr    ? self->scheduler
                                        : CounterWaitList::scheduler_hint(counter);
  node.priority = static_cast<std::uint8_t>(self != nullptr ? self->priority : Priority::Normal);
  node.job_counter = self != nullptr ? self->job_counter : nullptr;
  node.job_locals = self != nullptr ? self->job_locals : nullptr;
  node.next = nullptr;
  // Before any link below: once linked, the coroutine may already run elsewhere.
  note_task_wait(node, &counter, "counter");
  if (stop_wait != nullptr && stop_possible(node.job_stop)) {  // a stop wakes it: lockable list
    if (link_stoppable_counter_wait(counter, node, *stop_wait)) return true;
    clear_task_wait(node);  // not linked: it goes on at once
    return false;
  }
  if (worker != nullptr && worker->combining_signals) {
    // A coroutine of a wake chain's chunk: linked with the chunk's other waits on this counter
    // in one CAS when the chunk ends (Worker::deferred_link_counter).
    defer_link(*worker, counter, node);
    return true;
  }
  CounterWaitList::link(counter, node, worker);
  // From here the coroutine may already be running elsewhere: touch nothing of it.
  return true;
}

namespace {

/// After the wait of a coroutine's node: whether it must look at the counter's exception.
/// A node with no coroutine address never linked (suspend_on_counter sets it just before the
/// link; the one later "not linked" path, a stop that came first, throws Cancelled before
/// this is asked): the caller's own co_await keeps the counter alive. A linked node was woken
/// by the last signal's drain, which flagged it when the counter keeps an exception; without
/// the flag the counter may already be gone.
bool coroutine_must_check_error(const WaitNode& node) noexcept {
  return node.coroutine_address == nullptr || node.error_kept != 0;
}

}  // namespace

void resume_from_counter(Counter& counter, WaitNode& node) {
  CounterWaitList::wait_for_linker(node);  // the linker is this awaiter's own await_suspend
  if (stop_requested(node.job_stop)) throw_cancelled("co_await ctx.wait(counter)");
  if (coroutine_must_check_error(node)) CounterWaitList::rethrow_if_error(counter);
}

void resume_from_join(Counter& counter, WaitNode& node) {
  CounterWaitList::wait_for_linker(node);  // the linker is this awaiter's own await_suspend
  if (coroutine_must_check_error(node)) CounterWaitList::rethrow_if_error(counter);
}

bool suspend_for_yield(WaitNode& node, Scheduler& scheduler, std::coroutine_handle<> coroutine) {
  Worker* const here = current_worker();
  node.kind = WaitNode::Kind::Coroutine;
  node.job_stop = here != nullptr && here->current != nullptr ? here->current->job_stop : nullptr;
  if (stop_requested(node.job_stop)) return false;  // await_resume throws Cancelled
  Worker* worker = current_worker_of(scheduler);
  if (worker != nullptr && current_fiber() != nullptr) {
    // On one of our workers: behind the work that is ready, through the worker's yield queue
    // (stackless, like the wait above; no fiber switch).
    node.coroutine_address = coroutine.address();
    node.scheduler = &scheduler;
    node.job_counter = worker->current != nullptr ? worker->current->job_counter : nullptr;
    node.job_locals = worker->current != nullptr ? worker->current->job_locals : nullptr;
    note_task_wait(node, nullptr, nullptr);  // no wait; the resume names the segment
    const Priority priority =
        worker->current != nullptr ? worker->current->priority : Priority::Normal;
    // release (the deque push): the coroutine is suspended already (await_suspend runs after
    // the suspension), so whoever takes it may resume it at once. Touch nothing of it after.
    push_yielded(*worker, Job::resume_coroutine(&node, priority));
    scheduler.notify_from_worker(1);
    return true;
  }
  schedule_coroutine(node, scheduler, coroutine);
  return true;
}

bool on_scheduler(const Scheduler& scheduler) noexcept {
  return current_worker_of(scheduler) != nullptr;
}

void schedule_coroutine(WaitNode& node, Scheduler& scheduler, std::coroutine_handle<> coroutine) {
  node.kind = WaitNode::Kind::Coroutine;
  node.coroutine_address = coroutine.address();
  node.scheduler = &scheduler;
  const Fiber* self = current_fiber();  // a job's coroutine keeps its JobLocal values
  node.job_locals = self != nullptr ? self->job_locals : nullptr;
  scheduler.inject(Job::resume_coroutine(&node, Priority::Normal), current_worker());
}

void start_coroutine_job(Context& ctx, JobRecord& record,
                         std::coroutine_handle<TaskPromise<void>> coroutine) {
  Scheduler& scheduler = ContextAccess::scheduler(ctx);
  coroutine.promise().bind_job(scheduler, &record, resume_function(coroutine), record.name);
  Worker* const worker = current_worker();  // once for both uses; not kept past the resume
  if (is_worker_of(worker, scheduler)) {
    WorkerStats::bump(worker->stats.coroutine_jobs_started);
  } else {
    scheduler.count_foreign_coroutine_job(+1);
  }
  // The job's JobLocal values live in the root promise from its first segment on. The fiber
  // (not the worker) is kept across the segment: a plain wait in it may move the fiber to
  // another worker, but the same fiber comes back here.
  Fiber* const self = running_fiber(worker);
  JobLocalEntry** outer = nullptr;
  if (self != nullptr) outer = std::exchange(self->job_locals, coroutine.promise().job_locals());
  coroutine.resume();  // runs until its first real suspension (or its end)
  if (self != nullptr) self->job_locals = outer;
}

namespace {

/// Tracing: records the last run segment of the coroutine job of `counter` that ends on
/// `worker` now, before its counter's signal, so that a trace written once a wait on the
/// counter returned holds it (docs/decisions.md, "The last slice before the signal"). The code
/// that ran the segment (run_job, resume_coroutine) then records none.
void record_last_segment(Worker& worker, const Counter* counter) noexcept {
  Fiber* fiber = worker.current;
  // The fiber runs this job's segment (not another job that resumed it inline: none does).
  if (fiber == nullptr || fiber->job_counter != counter || fiber->segment_recorded) return;
  // relaxed: see Fiber::job_name.
  worker.trace.record(TraceKind::Coroutine, fiber->segment_start_ns, trace_now_ns(), fiber->index,
                      fiber->job_name.load(std::memory_order_relaxed));
  fiber->segment_recorded = true;
}

}  // namespace

void finish_task_job(Scheduler& scheduler, JobRecord* record, std::exception_ptr error) noexcept {
  Counter* counter = record->counter;
  record->invoke(*record, nullptr);  // destroys the callable (and its captures)
  if (error) CounterWaitList::capture(*counter, std::move(error));
  // One lookup of the worker for the count, the record and the signal: nothing below suspends.
  Worker* const worker = current_worker();
  if (is_worker_of(worker, scheduler)) {
    WorkerStats::bump(worker->stats.coroutine_jobs_ended);
    if (scheduler.tracing()) record_last_segment(*worker, counter);  // before the signal
    scheduler.records().release(worker->records, record);
  } else {
    scheduler.count_foreign_coroutine_job(-1);  // ended by a foreign thread's resume
    scheduler.records().release_shared(record);
  }
  // Last, as Counter::signal does it: a waiter may destroy the counter once it sees zero.
  if (worker != nullptr && worker->combining_signals) {
    defer_signal(*worker, *counter);
  } else {
    CounterWaitList::signal(*counter, worker);
  }
}

}  // namespace fiberjob::detail

namespace fiberjob::detail {

bool link_callback(Counter& counter, WaitNode& node) noexcept {
  if (CounterWaitList::load_settled(counter) == 0) return false;
  node.kind = WaitNode::Kind::Callback;
  node.next = nullptr;
  CounterWaitList::link(counter, node, current_worker());
  return true;
}

void wait_for_linker(const WaitNode& node) noexcept { CounterWaitList::wait_for_linker(node); }

std::exception_ptr take_exception(Counter& counter) noexcept {
  return CounterWaitList::take_error(counter);  // no rethrow: nothing to allocate
}

}  // namespace fiberjob::detail
