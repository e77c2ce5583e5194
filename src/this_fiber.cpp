// this_fiber::wait/yield/on_fiber: the public entry points of stackful waiting and yielding,
// over wait_on_fiber and yield_on_fiber (fiber_switch.cpp, next to the switch they inline).

#include "fiberjob/this_fiber.hpp"

#include <string>

#include "counter_wait_list.hpp"
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

}  // namespace detail

namespace this_fiber {
namespace {

/// Throws Error (NotOnFiber) for `call` made outside a job. Out of line and cold: the entry
/// points below then build no string in their own frames, and this_fiber::yield needs no frame.
[[noreturn, gnu::cold, gnu::noinline]] void throw_not_on_fiber(const char* call) {
  throw Error(ErrorCode::NotOnFiber,
              std::string("fiberjob: ") + call +
                  " was called outside a job (not on a fiberjob fiber); on a plain thread use "
                  "JobSystem::wait(counter), which parks the thread, and in a coroutine "
                  "co_await the counter");
}

detail::Fiber* require_fiber(const char* call) {
  detail::Fiber* self = detail::current_fiber();
  if (self == nullptr) [[unlikely]]
    throw_not_on_fiber(call);
  return self;
}

/// this_fiber::wait of a job spawned with a stop token: a stop requested before or during the
/// wait ends it with Cancelled; a wait that need not suspend (the counter at zero, signals
/// this thread holds back applied) completes normally, as a co_await does (docs/api.md,
/// Errors, Cancelled). Out of line: most jobs have no token.
[[gnu::cold, gnu::noinline]] void wait_with_stop_token(detail::Fiber* self, Counter& counter) {
  if (!counter.done()) {
    detail::throw_if_job_stopped(self, "this_fiber::wait");
    const bool check_error = detail::wait_on_fiber_stoppable(self, counter);
    detail::throw_if_job_stopped(self, "this_fiber::wait");
    // Woken by the last signal: the counter may be gone unless it keeps an exception.
    if (!check_error) return;
  }
  detail::CounterWaitList::rethrow_if_error(counter);
}

/// this_fiber::yield of a job spawned with a stop token (a stop requested ends it with
/// Cancelled), or outside a job (the error). Out of line: the usual yield then needs no frame.
[[gnu::cold, gnu::noinline]] void yield_unusual(detail::Fiber* self) {
  if (self == nullptr) throw_not_on_fiber("this_fiber::yield");
  detail::throw_if_job_stopped(self, "this_fiber::yield");
  detail::yield_on_fiber(self);
}

}  // namespace

void wait(Counter& counter) {
  detail::Fiber* self = require_fiber("this_fiber::wait");
  // One test for the usual job, spawned without a stop token (the job's token does not change
  // while it runs: Fiber::job_stop is restored around every job run nested on its stack).
  if (self->job_stop != nullptr) [[unlikely]] {
    wait_with_stop_token(self, counter);
    return;
  }
  // Woken by the last signal, the counter may be gone: look at it only when told to.
  if (detail::wait_on_fiber(self, counter)) detail::CounterWaitList::rethrow_if_error(counter);
}

void yield() {
  detail::Fiber* self = detail::current_fiber();
  // One test for the usual job, spawned without a stop token, on a fiber.
  if (self == nullptr || self->job_stop != nullptr) [[unlikely]] {
    yield_unusual(self);
    return;
  }
  // A tail call: no check after the yield (a frame here cost a third of a yield, row 4 of
  // docs/benchmarks.md); a stop requested meanwhile is seen by the job's next wait or yield.
  detail::yield_on_fiber(self);
}

bool on_fiber() noexcept { return detail::current_fiber() != nullptr; }

}  // namespace this_fiber
}  // namespace fiberjob
