// The awaitables' out-of-line halves, and the end of a coroutine job. On a fiber every awaiter
// uses the stackful path of this_fiber; off our fibers it links the node in the awaiter and the
// coroutine comes back as Job::ResumeCoroutine.

#include "fiberjob/awaiters.hpp"

#include <utility>

#include "counter_access.hpp"
#include "fiber_switch.hpp"
#include "fiberjob/detail/external_wait.hpp"
#include "fiberjob/detail/job_record.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace fiberjob::detail {

bool suspend_on_counter(Counter& counter, WaitNode& node, Scheduler* scheduler,
                        std::coroutine_handle<> coroutine) {
  if (Fiber* self = current_fiber()) {
    wait_on_fiber(self, counter);  // stackful: the whole fiber waits, the coroutine stays put
    return false;
  }
  node.kind = WaitNode::Kind::Coroutine;
  node.coroutine = coroutine.address();
  node.scheduler = scheduler != nullptr ? scheduler : CounterAccess::scheduler_hint(counter);
  node.next = nullptr;
  CounterAccess::link(counter, node, current_worker());
  // From here the coroutine may already be running elsewhere: touch nothing of it.
  return true;
}

void resume_from_counter(Counter& counter, WaitNode& node) {
  CounterAccess::wait_for_linker(node);  // no-op on the fiber path (linking stayed 0)
  CounterAccess::rethrow_if_error(counter);
}

bool suspend_for_yield(WaitNode& node, Scheduler& scheduler, std::coroutine_handle<> coroutine) {
  if (Fiber* self = current_fiber()) {
    yield_on_fiber(self);
    return false;
  }
  schedule_coroutine(node, scheduler, coroutine);
  return true;
}

bool on_scheduler(const Scheduler& scheduler) noexcept {
  const Worker* worker = current_worker();
  return worker != nullptr && worker->scheduler == &scheduler;
}

void schedule_coroutine(WaitNode& node, Scheduler& scheduler, std::coroutine_handle<> coroutine) {
  node.kind = WaitNode::Kind::Coroutine;
  node.coroutine = coroutine.address();
  node.scheduler = &scheduler;
  scheduler.inject(Job::resume_coroutine(&node, Priority::Normal), current_worker());
}

void finish_task_job(Scheduler& scheduler, JobRecord* record, std::exception_ptr error) noexcept {
  Counter* counter = record->counter;
  record->invoke(*record, nullptr);  // destroys the callable (and its captures)
  if (error) CounterAccess::capture(*counter, std::move(error));
  release_unused_record(scheduler, record);
  counter->signal();  // last: a waiter may destroy the counter once it sees zero
}

}  // namespace fiberjob::detail

namespace fiberjob::detail {

bool link_callback(Counter& counter, WaitNode& node) noexcept {
  if (CounterAccess::load_settled(counter) == 0) return false;
  node.kind = WaitNode::Kind::Callback;
  node.next = nullptr;
  CounterAccess::link(counter, node, current_worker());
  return true;
}

void wait_for_linker(const WaitNode& node) noexcept { CounterAccess::wait_for_linker(node); }

std::exception_ptr take_exception(Counter& counter) noexcept {
  try {
    CounterAccess::rethrow_if_error(counter);
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

}  // namespace fiberjob::detail
