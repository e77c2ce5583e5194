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
//
// A join never gives up (a counter must not die under its jobs), so one whose jobs never end
// would hang silently: once per process, a join that has waited kJoinNoticeAfterMs writes a
// notice to stderr naming the counter and the fix, and goes on waiting. On a fiber the notice
// is a timer of the fiber's job system whose unlink writes it and wakes nobody; a parked
// thread's futex wait times out once at the same deadline.

#include <unistd.h>

#include <cxxabi.h>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <string>

#include "counter_join.hpp"
#include "counter_wait_list.hpp"
#include "fiber_switch.hpp"
#include "fiberjob/detail/die.hpp"
#include "fiberjob/detail/timer_entry.hpp"
#include "fiberjob/error.hpp"
#include "platform/futex.hpp"
#include "scheduler.hpp"
#include "timer_service.hpp"
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

/// How long a join waits before the notice. Relaxed everywhere: a setting read by each join,
/// pairs with nothing (set_join_notice_after_ms is for tests, before the join starts).
constexpr std::uint32_t kJoinNoticeAfterMs = 5000;
std::atomic<std::uint32_t> g_join_notice_after_ms{kJoinNoticeAfterMs};
/// The notice was written (or is being written): once per process. Relaxed: only elects the
/// one writer.
std::atomic<bool> g_join_noticed{false};

/// The notice's deadline for a join starting now (steady-clock ns).
std::uint64_t join_notice_deadline_ns() noexcept {
  const std::uint32_t after_ms = g_join_notice_after_ms.load(std::memory_order_relaxed);
  return steady_now_ns() + std::uint64_t{after_ms} * 1'000'000u;
}

/// Writes the one-time notice for the join of `counter`, which has waited long. With one
/// write(2) of a heap string: a timer may fire on a fiber with little stack left (as
/// pool_reports.cpp writes its reports). Any thread.
void notice_long_join(const Counter& counter) noexcept {
  if (g_join_noticed.exchange(true, std::memory_order_relaxed)) return;  // relaxed: see above
  const std::int64_t pending = CounterWaitList::raw_value(counter) & CounterWaitList::kCountMask;
  char head[160];
  std::snprintf(head, sizeof head,
                "fiberjob: Counter %p was destroyed while %" PRId64
                " unit(s) it counts were pending, and its destructor has waited %" PRIu32
                " ms for them",
                static_cast<const void*>(&counter), pending,
                g_join_notice_after_ms.load(std::memory_order_relaxed));
  try {  // no memory for the string: no notice
    const std::string message =
        std::string(head) +
        ": ~Counter joins the jobs it counts (the exception-safe join) so that none touches a "
        "dead counter, and it waits for as long as they run. If a job it counts never ends "
        "(it waits on a gate nobody opens), this waits forever. Wait on the counter before it "
        "goes out of scope, and make sure every job it counts ends, also on paths that throw. "
        "Still waiting; this notice is written once per process.\n";
    std::size_t done = 0;
    while (done < message.size()) {
      const ssize_t n = ::write(STDERR_FILENO, message.data() + done, message.size() - done);
      if (n <= 0) return;  // nothing to do about a failing stderr
      done += static_cast<std::size_t>(n);
    }
  } catch (...) {
  }
}

/// TimerEntry::unlink of the notice's timer: writes the notice; wakes nobody (false), so the
/// entry's node is never touched.
bool notice_from_timer(void* counter, WaitNode&) noexcept {
  notice_long_join(*static_cast<const Counter*>(counter));
  return false;
}

/// The notice of a join on `self`, a fiber of a job system: a timer armed while the join
/// waits (none once the notice was written). The expirer writes it from a worker.
class JoinNoticeTimer {
 public:
  JoinNoticeTimer(Fiber* self, Counter& counter) noexcept {
    if (g_join_noticed.load(std::memory_order_relaxed)) return;  // relaxed: see above
    entry_.deadline_ns = join_notice_deadline_ns();
    entry_.scheduler = self->scheduler;
    entry_.node = &self->node;  // never touched: notice_from_timer wakes nobody
    entry_.unlink = &notice_from_timer;
    entry_.object = &counter;
    notify_timer_armed(arm_timer(entry_));
  }
  ~JoinNoticeTimer() {
    // Off the heap, or the expirer done with it: the entry on this stack may go.
    if (entry_.scheduler != nullptr) entry_.scheduler->timers().cancel(entry_);
  }
  JoinNoticeTimer(const JoinNoticeTimer&) = delete;
  JoinNoticeTimer& operator=(const JoinNoticeTimer&) = delete;

 private:
  TimerEntry entry_;
};

/// The join of a plain thread: wait_on_thread, with one timed futex wait for the notice.
void join_on_thread(Counter& counter) noexcept {
  if (g_join_noticed.load(std::memory_order_relaxed)) {  // relaxed: see above
    (void)CounterWaitList::wait_on_thread(counter);      // the join drops the exception
    return;
  }
  if (CounterWaitList::load_settled(counter) == 0) return;
  WaitNode node;
  node.kind = WaitNode::Kind::Thread;
  CounterWaitList::link(counter, node, current_worker());
  const std::uint64_t deadline_ns = join_notice_deadline_ns();
  bool noticed = false;
  // acquire: pairs with the waker's release store of `woken` (wake_list), as wait_on_thread.
  while (node.woken.load(std::memory_order_acquire) == 0) {
    if (noticed) {
      futex_wait(node.woken, 0);
    } else if (!futex_wait_until(node.woken, 0, deadline_ns)) {
      notice_long_join(counter);
      noticed = true;
    }
  }
}

}  // namespace

std::uint32_t set_join_notice_after_ms(std::uint32_t after_ms) noexcept {
  g_join_noticed.store(false, std::memory_order_relaxed);  // relaxed: see g_join_noticed
  return g_join_notice_after_ms.exchange(after_ms, std::memory_order_relaxed);
}

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
    join_on_thread(counter);
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
    const JoinNoticeTimer notice(self, counter);
    (void)wait_on_fiber(self, counter);  // the join drops the exception
  } catch (const Error&) {               // FiberPoolExhausted: no fiber to run other jobs meanwhile
    die_with(
        "fiberjob: Counter destroyed in a job while jobs it counts are pending, and the join "
        "could not wait: no fiber could be had to run other work meanwhile "
        "(Config::max_fiber_count fibers in use). Raise Config::max_fiber_count, or wait on "
        "the counter before it goes out of scope.");
  }
  give_eh_state(state);
}

}  // namespace fiberjob::detail
