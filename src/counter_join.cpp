// The join of a counter destroyed while jobs it counts are pending (Counter::~Counter): the
// destroying code waits for them, so a scope left by an exception never leaves children
// running against a dead counter (docs/decisions.md, "Exception-safe joins").
//
// On one of our fibers (a plain job, or a coroutine running on a worker) the wait is the
// stackful one: the fiber suspends on the counter's wait list, mid-unwind if an exception is
// propagating, and the worker runs other jobs. The fiber may resume on another thread, so the
// thread's C++ exception-handling state (Itanium ABI `__cxa_eh_globals`: the caught-exception
// stack and the uncaught count, per thread) is taken off this thread before the suspension and
// put on the resuming thread after it; otherwise `std::uncaught_exceptions()` would stay wrong
// on both threads for good. Off our fibers the thread parks on the counter.

#include <cxxabi.h>

#include "counter_wait_list.hpp"
#include "fiber_switch.hpp"
#include "fiberjob/detail/die.hpp"
#include "fiberjob/error.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace fiberjob::detail {
namespace {

/// The Itanium C++ ABI's per-thread exception-handling globals: the first two fields, which
/// libstdc++ (unwind-cxx.h) and libc++abi (cxa_exception.h) lay out alike. Only ARM's EHABI
/// unwinder (32-bit Arm, not a target of fiberjob) adds a third.
struct EhGlobals {
  void* caught_exceptions;
  unsigned int uncaught_exceptions;
};

/// This thread's globals. Not inline, and never called twice in one function across a
/// suspension: `__cxa_get_globals` is declared `const`, so a compiler may reuse its result
/// within a function, which would be the previous thread's after a migration.
[[gnu::noinline]] EhGlobals* this_thread_eh_globals() noexcept {
  return reinterpret_cast<EhGlobals*>(abi::__cxa_get_globals());
}

/// Moves this thread's exception-handling state out (leaving it clean for the jobs the worker
/// runs while we wait).
[[gnu::noinline]] EhGlobals take_eh_state() noexcept {
  EhGlobals* globals = this_thread_eh_globals();
  const EhGlobals taken = *globals;
  *globals = EhGlobals{nullptr, 0};
  return taken;
}

/// Puts `state` on the (possibly other) thread that resumed us. That thread's state is clean:
/// its dispatch loop holds no exception between jobs.
[[gnu::noinline]] void give_eh_state(const EhGlobals& state) noexcept {
  *this_thread_eh_globals() = state;
}

/// True when `scheduler` is a live job system (still registered).
bool may_finish(const Scheduler* scheduler) noexcept {
  return scheduler != nullptr && scheduler_registered(scheduler);
}

}  // namespace

void join_pending(Counter& counter) noexcept {
  if (CounterWaitList::load_settled(counter) == 0) return;
  if (!may_finish(CounterWaitList::scheduler_hint(counter))) {
    die_with(
        "fiberjob: Counter destroyed while units it counts are still pending, and no live job "
        "system ran jobs on it (the units were added by hand, or the job system is gone), so "
        "waiting for them could hang forever. Signal every unit added by hand before the "
        "counter goes out of scope, also on paths that throw.");
  }
  Fiber* self = current_fiber();
  if (self == nullptr) {  // a plain thread (or a coroutine resumed by one): it parks
    CounterWaitList::wait_on_thread(counter);
    return;
  }
  if (&counter == self->job_counter) {
    die_with(
        "fiberjob: a job destroyed the counter its own end signals while it was pending: that "
        "counter reaches zero only after the job ends, so the join could never return. Keep a "
        "job's counter outside the job.");
  }
  const EhGlobals state = take_eh_state();
  try {
    wait_on_fiber(self, counter);
  } catch (const Error&) {  // FiberPoolExhausted: no fiber to run other jobs meanwhile
    die_with(
        "fiberjob: Counter destroyed in a job while jobs it counts are pending, and the join "
        "could not wait: no fiber could be had to run other work meanwhile "
        "(Config::max_fiber_count fibers in use). Raise Config::max_fiber_count, or wait on "
        "the counter before it goes out of scope.");
  }
  give_eh_state(state);
}

}  // namespace fiberjob::detail
