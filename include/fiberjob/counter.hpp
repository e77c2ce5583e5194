#pragma once
/// \file
/// `Counter`: the job-counting synchronisation primitive of fiberjob (Naughty Dog, GDC 2015).

#include <atomic>
#include <cstdint>
#include <exception>

#include "fiberjob/detail/wait_node.hpp"

namespace fiberjob {

class WaitAwaiter;

namespace detail {
struct CounterWaitList;
struct ValueWaiter;
class Scheduler;
}  // namespace detail

/// Counts outstanding jobs. `JobSystem::run` and `Context::spawn` add one per job; each job
/// signals it once when it ends (also when it throws). Waiting on it — `this_fiber::wait` from a
/// job, `JobSystem::wait` from a plain thread — returns when it reaches zero, and rethrows the
/// first exception a job threw.
///
/// Waiting never allocates: waiters link an intrusive node into a lock-free wait list (Treiber
/// stack, drained in one exchange). The counter may live on the waiter's stack: the last
/// signaller never touches it after a waiter can see zero, and a wait returns only after its
/// own link is over. Another waiter's link is not covered: a waiter that found the count
/// non-zero may still be linking (pushing its node, re-checking the count) when a different
/// wait has already returned.
///
/// A wait that the last signal wakes reads the counter again only when the counter keeps an
/// exception (to rethrow it): the last signal's drain looks once and tells each waiter it
/// wakes. So when no exception is kept, a counter whose waiters are all suspended in their
/// waits (their links over) may be destroyed as soon as its last `signal()` returns — a gate
/// opened and dropped at once — even though the woken waits have not returned yet.
///
/// Lifetime rules (the caller's responsibility):
/// * the counter outlives every job that signals it and every wait call on it — *every* wait,
///   not only the caller's own: with several waiters, destroy it only once all their waits
///   have returned (with one waiter, the usual join, that is the moment its wait returns).
///   The one exception: once every wait on it is suspended (linked), it may be destroyed
///   right after its last `signal()` returns if no exception is kept (no job on it threw, or
///   the exception was already rethrown and a new round forgot it); with an exception kept the
///   woken waits still read it to rethrow, so it must outlive them as above. A wait that has
///   only just begun may still be linking: destroying the counter under it is undefined (debug
///   builds abort with a message, see below);
/// * a counter may be reused (new jobs added after it reached zero) once every wait of the
///   previous round has returned, for the same reason: a late linker of the previous round
///   could otherwise drain a waiter of the new round, whose wait would return early. A new
///   round (the first add after zero) forgets an exception that a wait already rethrew; one
///   no wait has seen yet is kept for the next wait.
/// Debug builds of the library (assertions on, NDEBUG undefined) count the links in progress
/// and abort with a message when the counter is destroyed, or a new round starts, while
/// another waiter is still linking (two atomic operations more per wait; release builds do
/// not check). The check sees a late linker only once it has started linking, so it catches
/// some breaches of the rules, not all.
///
/// Thread-safety: all members may be called concurrently from any thread.
/// Size: one cache line (64 bytes), so that a counter never shares a line with hot neighbours
/// when it starts on a line boundary (fiber stacks, statics, aligned allocations). 64 bytes on
/// every platform, though Apple's M-series cores have 128-byte lines: the type's size does not
/// depend on the target. It is not declared alignas(64): C++20 coroutine frames (ours and
/// foreign ones, e.g. Asio's) guarantee only 16-byte alignment, and a counter is routinely a
/// local of a coroutine.
class alignas(16) Counter {
 public:
  /// An idle counter: zero outstanding jobs, no waiters, no exception.
  Counter() noexcept = default;
  /// Joins: when jobs it counts are still pending (a scope left by an exception before its
  /// wait, as in `co_await ctx.wait(a)` rethrowing while the jobs of a counter `b` declared
  /// beside it still run), waits until they have ended, so none touches a dead counter.
  /// Suspends: only then — on one of our fibers (a plain job, or a coroutine running on a
  ///   worker) the fiber waits stackfully and the worker runs other jobs; on any other thread
  ///   the thread parks. The exception those jobs threw, if any, is dropped (the one that
  ///   unwinds the scope goes on).
  /// Aborts with a message where waiting is impossible: no live job system ever ran jobs on
  /// the counter (units added by hand, which nothing may ever signal), the counter is the one
  /// the destroying job's own end signals, or no fiber can be had to wait on
  /// (`Config::max_fiber_count`); and when waiters are still linked (they would touch a dead
  /// counter). Debug builds also abort while another waiter is still linking (see the
  /// lifetime rules). Cost when nothing is pending: two loads (three in debug).
  /// Design: docs/decisions.md, "Exception-safe joins".
  ~Counter();
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  /// Adds `n` (> 0) outstanding units by hand, e.g. for a per-frame event that the game loop
  /// signals. Jobs started with run/spawn add their own unit; do not add for them.
  /// Suspends: no. Thread-safety: any thread.
  /// Errors: throws `Error` (`CounterMisuse`) if n <= 0 or the counter was over-signalled.
  ///   Debug builds abort with a message when this starts a new round (the count was zero)
  ///   while a waiter of the previous round is still linking (see the lifetime rules).
  /// \param n units to add, > 0.
  void add(std::int64_t n = 1);

  /// Removes one unit; the signal that reaches zero wakes every waiter (batch wake).
  /// Suspends: no. Thread-safety: any thread; lock-free.
  /// Errors: aborts with a message if the counter is signalled more often than added to
  /// (that would corrupt waiters that are still linked).
  void signal() noexcept;

  /// True when no unit is outstanding. Acquire: a caller that sees true sees every write the
  /// signalling jobs made. Suspends: no. Thread-safety: any thread.
  /// \return true when the count is zero.
  [[nodiscard]] bool done() const noexcept;

  /// Outstanding units right now (a racy snapshot, for statistics and tests). The ends of
  /// jobs that a worker ran just before the job it runs now, of this same counter, may count
  /// until that job ends or suspends (docs/api.md, "Waiting for a value"); the caller's own
  /// worker's are applied first. Thread-safety: any thread.
  /// \return the units outstanding.
  [[nodiscard]] std::int64_t pending() const noexcept;

  /// `co_await counter`: the same as `co_await ctx.wait(counter)`, from any coroutine, on or off
  /// our fibers (see `WaitAwaiter`, in fiberjob/awaiters.hpp). Suspends: unless already zero.
  /// \return the awaiter (one per `co_await`).
  WaitAwaiter operator co_await() noexcept;

  /// Exceptions thrown by jobs on this counter after the first one (which is kept and rethrown
  /// by waits); reset with the exception when the counter is reused.
  /// \return how many exceptions were dropped in this round.
  [[nodiscard]] std::uint32_t dropped_exceptions() const noexcept;

 private:
  friend struct detail::CounterWaitList;
  friend class WaitAwaiter;  // its inline await_ready and await_resume read value_, error_state_

  /// States: v >= 0: v units outstanding (0 = done). v in [kWaking, kWaking + 2^61): the final
  /// signaller is draining the wait list; v - kWaking units were added meanwhile. Waiters treat
  /// it as "not yet" and spin the few nanoseconds until it turns into a count.
  /// Wait-for-value (counter_value_wait.cpp) adds two flag bits above the count (count < 2^59):
  /// bit 59 (kValueWaiters) = `value_waiters_` is not empty; bit 60 (kValueLocked) = a thread
  /// owns `value_waiters_` (linking or waking value waiters); signals spin while it is set.
  /// Both are only ever set on a count > 0, never with the waking sentinel.
  std::atomic<std::int64_t> value_{0};
  /// Head of the wait list (Treiber stack); nullptr = no waiters.
  std::atomic<detail::WaitNode*> waiters_{nullptr};
  static constexpr std::uint32_t kNoError = 0;
  static constexpr std::uint32_t kErrorWriting = 1;    ///< One thread owns `error_` right now.
  static constexpr std::uint32_t kErrorCaptured = 2;   ///< `error_` holds an exception.
  static constexpr std::uint32_t kErrorDelivered = 3;  ///< ...and a wait has rethrown it.
  /// kNoError or kErrorDelivered --CAS--> kErrorWriting --store--> kErrorCaptured (a job threw)
  /// or kNoError (a new round forgot a delivered exception); kErrorCaptured --> kErrorDelivered
  /// (a wait rethrew it). kErrorWriting is a tiny lock around `error_` and `dropped_errors_`.
  std::atomic<std::uint32_t> error_state_{kNoError};
  /// Exceptions thrown after the first one of a round and dropped. Incremented by capture()
  /// when one is already captured, reset under kErrorWriting; relaxed everywhere: a
  /// statistic, pairs with nothing.
  std::atomic<std::uint32_t> dropped_errors_{0};
  /// The first exception; written by the claimer before its signal (release), read by waiters
  /// after they observe zero (acquire).
  std::exception_ptr error_;
  /// The job system that last queued a job on this counter: where a foreign coroutine doing a
  /// bare `co_await counter` resumes. Relaxed: a hint, read when the awaiter links.
  std::atomic<detail::Scheduler*> scheduler_hint_{nullptr};
  /// Waiters for a count at or below a target > 0 (an unordered intrusive list); guarded by
  /// the kValueLocked bit of `value_` (see there). nullptr = none.
  detail::ValueWaiter* value_waiters_ = nullptr;
  /// Debug builds of the library only (else always 0): waiters between the start and the end
  /// of their link (CounterWaitList::link), for the reuse and destruction checks. Relaxed
  /// increment (ordered by the push CAS), release decrement, pairing with the acquire loads in
  /// add() and ~Counter (docs/memory_ordering.md, "Counter").
  std::atomic<std::uint32_t> linkers_{0};
  unsigned char padding_[64 - 2 * sizeof(std::int64_t) - 3 * sizeof(std::uint32_t) -
                         sizeof(std::exception_ptr) - 2 * sizeof(void*)] = {};
};
static_assert(sizeof(Counter) == 64, "a counter is 64 bytes on every platform");

}  // namespace fiberjob
