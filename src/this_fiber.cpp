// Stackful waiting and yielding on the current fiber: this_fiber::wait/yield, and the same
// operations for the awaiters (one code path for plain jobs and coroutines).

#include "fiberjob/this_fiber.hpp"

#include <string>

#include "counter_access.hpp"
#include "fiber_switch.hpp"
#include "fiberjob/error.hpp"
#include "worker.hpp"

namespace fiberjob {
namespace detail {

void throw_own_counter_wait() {
  throw Error(ErrorCode::CounterMisuse,
              "fiberjob: waiting on the counter the running job itself signals: it reaches "
              "zero only after this job ends, so the wait could never return. Wait on a "
              "counter of the jobs you spawned instead");
}

void wait_on_fiber(Fiber* self, Counter& counter) {
  check_not_own_counter(self, counter);
  if (CounterAccess::load_settled(counter) == 0) return;
  if (has_local_jobs(*self->worker)) {  // inline check: a ping-pong waits with none
    run_own_children(self, counter);
    if (CounterAccess::load_settled(counter) == 0) return;
  }
  self->node.kind = WaitNode::Kind::Fiber;
  self->node.fiber = self;
  self->node.next = nullptr;
  self->waiting_on.store(&counter, std::memory_order_relaxed);  // relaxed: diagnostics
  if (suspend(self, Handoff::Action::LinkToCounter, &counter)) {
    CounterAccess::wait_for_linker(self->node);
  } else {
    run_until_done(self, counter);  // no free fiber to suspend into
  }
  self->waiting_on.store(nullptr, std::memory_order_relaxed);  // relaxed: diagnostics
}

void yield_on_fiber(Fiber* self) {
  if (self->pinned) return;  // an attached thread's own stack: documented to return at once
  // Without a free fiber the yield is skipped: the job goes on, and the ready work it found
  // stays queued for the other workers.
  suspend(self, Handoff::Action::Reschedule, nullptr);
}

}  // namespace detail

namespace this_fiber {
namespace {

detail::Fiber* require_fiber(const char* call) {
  detail::Fiber* self = detail::current_fiber();
  if (self == nullptr) {
    throw Error(ErrorCode::NotOnFiber,
                std::string("fiberjob: ") + call +
                    " was called outside a job (not on a fiberjob fiber); on a plain thread use "
                    "JobSystem::wait(counter), which parks the thread, and in a coroutine "
                    "co_await the counter");
  }
  return self;
}

}  // namespace

void wait(Counter& counter) {
  detail::wait_on_fiber(require_fiber("this_fiber::wait"), counter);
  detail::CounterAccess::rethrow_if_error(counter);
}

void yield() { detail::yield_on_fiber(require_fiber("this_fiber::yield")); }

bool on_fiber() noexcept { return detail::current_fiber() != nullptr; }

}  // namespace this_fiber
}  // namespace fiberjob
