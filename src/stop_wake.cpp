// Stops that wake suspended waits (fiberjob/detail/stop_wake.hpp): the stop callback's body,
// and the stoppable form of the plain code's counter wait. A job with a stop token waits for
// zero as a target-0 value waiter (counter_value_wait.cpp): that list is lockable, so the stop
// callback can take the node back; the lock-free Treiber list cannot give a node back before
// the drain. Jobs without a token keep the lock-free wait (one load and a compare more).

#include "fiberjob/detail/stop_wake.hpp"

#include "counter_wait_list.hpp"
#include "fiber_switch.hpp"
#include "fiberjob/counter_wait.hpp"
#include "worker.hpp"

namespace fiberjob::detail {

void StopWake::on_stop() noexcept {
  // acq_rel: acquire pairs with the linker's commit (release), so `node` is the linked one
  // and the link under the primitive's lock happened before our unlink takes that lock;
  // release pairs with a failing commit's acquire (that linker links nothing).
  if (state.exchange(kStopped, std::memory_order_acq_rel) != kLinked) return;
  WaitNode* const waiter = node;
  if (!unlink(object, *waiter)) return;  // a signal, set or timer took it: that one wakes it
  // Ours: nobody else wakes it. The waiter cannot return before this callback has (it
  // destroys the std::stop_callback first), so `waiter` stays valid through the wake.
  waiter->next = nullptr;
  wake_list(waiter, current_worker());
}

void wait_on_fiber_with_stop(Fiber* self, Counter& counter) {
  check_not_own_counter(self, counter);
  if (CounterWaitList::load_settled(counter) == 0) return;
  if (has_local_jobs(*self->worker)) {  // work-first, as wait_on_fiber
    run_own_children(self, counter);
    if (CounterWaitList::load_settled(counter) == 0) return;
  }
  ValueWaiter waiter;
  waiter.counter = &counter;
  StopWait stop;
  waiter.stop = stop.arm(self->job_stop, &unlink_value_wait, &waiter);
  const bool suspended = wait_on_fiber_linked(self, {&link_value_wait, &waiter, "a Counter"});
  stop.disarm();     // first: waits for a callback still running elsewhere
  if (!suspended) {  // an attached thread with no fiber to run jobs on meanwhile: it parks
    flush_deferred_signals(*self->worker);
    CounterWaitList::wait_on_thread(counter);
  }
}

bool link_stoppable_counter_wait(Counter& counter, WaitNode& node, CounterStopWait& wait) noexcept {
  wait.waiter.counter = &counter;
  wait.waiter.target = 0;
  wait.waiter.stop = wait.stop.arm(node.job_stop, &unlink_value_wait, &wait.waiter);
  return CounterWaitList::link_value_waiter(&wait.waiter, node);
}

}  // namespace fiberjob::detail
