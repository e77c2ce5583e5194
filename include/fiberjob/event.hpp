#pragma once
/// \file
/// `Event`: a manual-reset or auto-reset event that jobs, coroutines and threads wait on.

#include <coroutine>
#include <cstdint>

#include "fiberjob/detail/stoppable_wait.hpp"
#include "fiberjob/detail/wait_node.hpp"
#include "fiberjob/detail/wait_queue.hpp"

namespace fiberjob {

namespace detail {
struct EventAccess;
}  // namespace detail

/// A signal that waiters wait for (marl's `marl::Event`, cppcoro's `async_manual_reset_event`
/// and `async_auto_reset_event`).
///
/// * `Mode::Manual`: `set()` wakes every waiter and the event stays set, so later waits
///   return at once, until `reset()`.
/// * `Mode::Auto`: each `set()` lets exactly one wait through — the oldest waiter if any
///   (FIFO), else the next wait to come — and the event is reset by that wait. Sets while the
///   event is already set (no waiter took it yet) are not counted: two sets with no waiter in
///   between let one wait through.
///
/// Waiting: `co_await ev` from any coroutine (ours or foreign), `this_fiber::wait(ev)` from
/// plain code at any call depth (a job's fiber suspends; a plain thread parks). Waiters link
/// an intrusive node (in the fiber, the coroutine frame or the parked thread's stack) into a
/// FIFO guarded by a short spin lock (detail::WaitQueue): no allocation, ever.
///
/// Thread-safety: every member may be called concurrently from any thread.
/// Lifetime: the event must outlive every wait on it; it may be destroyed by a waiter as soon
/// as its wait returned (set() touches the event last before it wakes anyone). A job still
/// waiting on it when its `JobSystem` was destroyed (reported on stderr at the destruction)
/// never returns from that wait; `set()` the event before destroying it all the same: that
/// unlinks the job (its resumption goes to the stopped system, which never runs it), and the
/// destructor, which otherwise stops the process, finds nobody waiting.
class Event {
 public:
  /// Whether a `set()` lets every waiter through and stays set (Manual) or lets one through
  /// and resets (Auto).
  enum class Mode : std::uint8_t { Manual, Auto };

  /// A reset event. Allocation: none.
  /// \param mode manual-reset (every waiter, stays set) or auto-reset (one waiter per set).
  /// \param initially_set whether the event starts set.
  explicit Event(Mode mode = Mode::Manual, bool initially_set = false) noexcept;
  /// Aborts with a message naming the fix when jobs, coroutines or threads still wait on it.
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  /// Sets the event. Manual: wakes every waiter (in the order they came) and stays set. Auto:
  /// wakes the oldest waiter, or, when none waits, stays set until the next wait consumes it.
  /// Waiters resume on a worker (a job's fiber or coroutine: on a worker of its job system —
  /// on this thread's worker when it is one; a foreign coroutine awaiting off our fibers: on
  /// this thread's worker, or inline on this thread when it is not a worker) or their parked
  /// thread wakes. Suspends: no. Cost: one spin lock round trip, plus O(woken) to queue the
  /// waiters; an already-set event with no waiter costs one load. Thread-safety: any thread.
  void set() noexcept;

  /// Resets the event (no effect when it is not set). Suspends: no. Cost: one spin lock round
  /// trip. Thread-safety: any thread.
  void reset() noexcept;

  /// Whether the event is set now (a snapshot; acquire: a caller that sees true sees what the
  /// setter wrote before set()). Suspends: no.
  /// \return true when the event is set.
  [[nodiscard]] bool is_set() const noexcept;

  /// Waits without suspending: true when the event was set, which an auto-reset event then
  /// resets (consumes). Suspends: no. Cost: one load or one compare-exchange.
  /// \return true when the event was set (and, auto-reset, this call took the set).
  [[nodiscard]] bool try_wait() noexcept;

  /// `co_await ev`: resumes once the event is set (for an auto-reset event, once this waiter
  /// took a set). Does not suspend when it is set already. Otherwise the coroutine (never the
  /// fiber) suspends with its node in this awaiter; it resumes where `set()` says. No
  /// allocation (a job with a stop token: see `StopWait`, pooled). Thread-safety: one awaiter
  /// per co_await.
  /// Cancellation: in a job spawned with a `std::stop_token`, a wait that must suspend throws
  /// `Error` (`Cancelled`) at once when the stop came before, and a suspended one is woken by
  /// the stop and throws; a set that reached a waiter whose stop came meanwhile is passed on
  /// (auto-reset: set again, so the next waiter or wait takes it). A set event completes the
  /// wait normally, as a counter at zero does. Errors: Error (Cancelled), see above.
  class [[nodiscard]] Awaiter {
   public:
    /// Made by `co_await ev`; not for direct use.
    /// \param event the event to wait for.
    explicit Awaiter(Event& event) noexcept : event_(event) {}
    Awaiter(const Awaiter&) = delete;
    Awaiter& operator=(const Awaiter&) = delete;
    /// \return true when the event is set already (auto-reset: this wait took the set).
    bool await_ready() noexcept { return event_.try_wait(); }
    /// Links the coroutine into the event's wait queue, unless a set arrived meanwhile.
    /// \param coroutine the awaiting coroutine.
    /// \return false when the event was set meanwhile (the coroutine goes on), else true.
    bool await_suspend(std::coroutine_handle<> coroutine) {
      if (!wait_.begin(detail::current_job_stop(), &event_, &Event::unlink_waiter)) return false;
      return detail::suspend_coroutine_on({&Event::link_waiter, &wait_, "Event", &event_}, node_,
                                          nullptr, coroutine);
    }
    /// Nothing to deliver: the wait has completed. Errors: Error (Cancelled), see `Awaiter`.
    void await_resume() { event_.finish_wait(wait_.end(), "co_await event"); }

   private:
    Event& event_;
    detail::WaitNode node_;
    detail::StoppableWait wait_;
  };
  /// See `Awaiter`.
  /// \return the awaiter to `co_await` at once.
  Awaiter operator co_await() noexcept { return Awaiter(*this); }

  /// Waits in plain code until the event is set (auto-reset: until this waiter took a set);
  /// the body of `this_fiber::wait(ev)`, which see for where it resumes.
  /// Suspends: the job's fiber (a plain thread parks), unless set. Allocation: none.
  /// Errors: Error (FiberPoolExhausted) as `this_fiber::wait(counter)`; Error (Cancelled) in a
  /// job whose stop was requested, as `Awaiter`.
  void wait();

 private:
  friend struct detail::EventAccess;  // timed waits (timer.cpp)
  /// WaitQueue state bit: the event is set.
  static constexpr std::uint32_t kSet = 2;
  /// The linker of every untimed wait (WaitLinker; `wait` is a detail::StoppableWait): takes
  /// the set (auto), or links nothing when the wait's stop came first, or links the node.
  static bool link_waiter(void* wait, detail::WaitNode& node) noexcept;
  /// StopWake::unlink of an untimed wait (`wait` is the detail::StoppableWait).
  static bool unlink_waiter(void* wait, detail::WaitNode& node) noexcept;
  /// Removes `node` from the queue if a set has not taken it; true when it did.
  bool remove(detail::WaitNode& node) noexcept;
  /// After a stoppable wait: returns on Completed; else passes a set it took on (auto-reset)
  /// and throws Cancelled naming `call`.
  void finish_wait(detail::WaitEnd end, const char* call);

  detail::WaitQueue queue_;
  Mode mode_;
};

namespace this_fiber {
/// Suspends the calling plain code until `event` is set (for an auto-reset event, until this
/// waiter took one set). Returns at once when it is set already.
/// Suspends: yes, unless set — in a job the fiber is linked into the event's wait queue and
///   the worker runs other jobs; the job resumes on any worker. On a plain thread (not a
///   job) the thread parks on a futex instead. Never blocks a worker thread.
/// Allocation: none. Thread-safety: any number of waiters.
/// Errors: Error (FiberPoolExhausted) in a job when the pool has no fiber to run other work
///   meanwhile (nothing is lost; the wait did not begin); Error (Cancelled) in a job spawned
///   with a stop token whose stop was requested, when the event is not set (see
///   `Event::Awaiter`).
/// \param event the event to wait for; it must outlive the wait.
inline void wait(Event& event) { event.wait(); }
}  // namespace this_fiber

}  // namespace fiberjob
