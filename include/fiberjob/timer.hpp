#pragma once
/// \file
/// Time: sleeps (`co_await ctx.sleep_for(d)`, `this_fiber::sleep_for(d)`) and timed waits on
/// a `Counter` or an `Event` (`co_await ctx.wait_for(c, d)`, `this_fiber::wait_for(c, d)`),
/// served by one timer heap per job system that the workers look at (docs/api.md, "Time").

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <stop_token>

#include "fiberjob/awaiters.hpp"
#include "fiberjob/counter.hpp"
#include "fiberjob/counter_wait.hpp"
#include "fiberjob/detail/stop_wake.hpp"
#include "fiberjob/detail/timer_entry.hpp"
#include "fiberjob/detail/wait_node.hpp"
#include "fiberjob/detail/wait_queue.hpp"
#include "fiberjob/event.hpp"

namespace fiberjob {

/// The clock of every deadline: `std::chrono::steady_clock` (CLOCK_MONOTONIC on Linux).
using TimerClock = std::chrono::steady_clock;

namespace detail {

/// Now, in TimerClock nanoseconds since its epoch.
std::uint64_t steady_now_ns() noexcept;
/// `time` as TimerClock nanoseconds since its epoch (0 for times before it).
inline std::uint64_t deadline_ns(TimerClock::time_point time) noexcept {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(time.time_since_epoch());
  return ns.count() > 0 ? static_cast<std::uint64_t>(ns.count()) : 0;
}
/// Now + `duration` (rounded up to whole nanoseconds; at most about 30 years ahead; a
/// duration <= 0 is now), as TimerClock nanoseconds.
template <class Rep, class Period>
std::uint64_t deadline_after(const std::chrono::duration<Rep, Period>& duration) noexcept {
  constexpr std::chrono::duration<double, std::nano> kFarthest{1e18};
  const std::uint64_t now = steady_now_ns();
  if (duration <= duration.zero()) return now;
  if (std::chrono::duration<double, std::nano>(duration) >= kFarthest) {
    return now + static_cast<std::uint64_t>(kFarthest.count());
  }
  return now +
         static_cast<std::uint64_t>(std::chrono::ceil<std::chrono::nanoseconds>(duration).count());
}

/// The WaitLinker of a sleep: `object` is the TimerEntry (deadline and scheduler set). Arms
/// the timer, or links nothing when the deadline has passed.
bool link_sleep(void* entry, WaitNode& node) noexcept;
/// StopWake::unlink of a sleep: takes the TimerEntry `entry` off its heap; true when it did
/// (the timer had not fired).
bool unlink_sleep(void* entry, WaitNode& node) noexcept;
/// The WaitLinker of a timed Event wait: `object` is the TimerEntry (its `object` the Event).
bool link_timed_event(void* entry, WaitNode& node) noexcept;
/// StopWake::unlink of a timed Event wait: removes `node` from the Event `event`'s queue if a
/// set has not taken it; true when it did.
bool unlink_timed_event(void* event, WaitNode& node) noexcept;
/// After the waiter of `entry` resumed: disarms the timer (or waits for the expirer that fired
/// it to finish with it). Nothing when the linker never armed it.
void disarm(TimerEntry& entry) noexcept;
/// A timed counter wait, once resumed: disarms, throws Cancelled for `call` when the job's
/// `stop` was requested, else true when the counter reached zero (rethrowing its captured
/// exception when `check_error`) or false when the deadline came first. `check_error`: the
/// wait never linked (the counter is alive) or the drain that woke it saw an exception kept
/// (WaitNode::error_kept); when false the counter is not touched (it may be gone).
bool finish_timed_counter_wait(Counter& counter, TimerEntry& entry, bool check_error,
                               const std::stop_token* stop, const char* call);
/// A timed Event wait, once resumed and its stop disarmed (`stop_ended`: the stop removed the
/// node, StopWait::disarm): disarms the timer; when the job's `stop` was requested, passes on
/// a set the wait took (an auto-reset event is set again for the next waiter) and throws
/// Cancelled for `call`; else true when the event was set, false when the deadline came first.
bool finish_timed_event_wait(Event& event, TimerEntry& entry, bool stop_ended,
                             const std::stop_token* stop, const char* call);
/// The plain-code bodies of this_fiber::sleep_until / wait_until (timer.cpp).
void sleep_until_ns(std::uint64_t deadline_ns);
bool wait_until_ns(Event& event, std::uint64_t deadline_ns);
bool wait_until_ns(Counter& counter, std::uint64_t deadline_ns);

}  // namespace detail

/// `co_await ctx.sleep_for(d)` / `co_await ctx.sleep_until(t)`: resumes once the deadline has
/// passed. Does not suspend when it has already. Otherwise the coroutine (never the fiber)
/// suspends with its timer entry and wait node in this awaiter, and the worker that finds the
/// deadline due (an idle worker parked until it, or a busy one at its next look for work)
/// queues it on a worker of the job system it was awaited through. No allocation.
/// Cancellation: in a job spawned with a `std::stop_token`, completes with `Error`
/// (`Cancelled`) at once when the stop was requested before (also for a deadline that passed),
/// and promptly when it is requested while the coroutine sleeps (the stop takes the timer off
/// the heap and queues the coroutine).
/// Errors: Error (Cancelled), see above. Thread-safety: one awaiter per co_await.
class [[nodiscard]] SleepAwaiter {
 public:
  /// Made by `Context::sleep_for` / `sleep_until`; not for direct use.
  /// \param scheduler the job system whose timer service wakes the coroutine.
  /// \param deadline_ns the deadline, TimerClock nanoseconds since its epoch.
  SleepAwaiter(detail::Scheduler* scheduler, std::uint64_t deadline_ns) noexcept {
    entry_.scheduler = scheduler;
    entry_.deadline_ns = deadline_ns;
  }
  SleepAwaiter(const SleepAwaiter&) = delete;
  SleepAwaiter& operator=(const SleepAwaiter&) = delete;
  /// \return true when the deadline has passed already and no stop was requested.
  bool await_ready() noexcept {
    stop_ = detail::current_job_stop();
    return entry_.deadline_ns <= detail::steady_now_ns() && !detail::stop_requested(stop_);
  }
  /// Arms the timer (and the stop's wake), unless the deadline passed or the stop came.
  /// \param coroutine the sleeping coroutine.
  /// \return false when the deadline passed or the stop came (the coroutine goes on), else
  ///   true.
  bool await_suspend(std::coroutine_handle<> coroutine) {
    if (detail::stop_requested(stop_)) return false;  // await_resume throws Cancelled
    entry_.stop = stop_wait_.arm(stop_, &detail::unlink_sleep, &entry_);
    return detail::suspend_coroutine_on({&detail::link_sleep, &entry_, "a sleep"}, node_,
                                        entry_.scheduler, coroutine);
  }
  /// Disarms the stop's wake and the timer (waiting for a callback or expirer still touching
  /// them). Errors: Error (Cancelled) when the job's stop was requested.
  void await_resume() {
    stop_wait_.disarm();
    detail::disarm(entry_);
    if (detail::stop_requested(stop_)) detail::throw_cancelled("co_await ctx.sleep_for");
  }

 private:
  detail::TimerEntry entry_;
  detail::WaitNode node_;
  const std::stop_token* stop_ = nullptr;  ///< the awaiting job's token (lives as long as it)
  detail::StopWait stop_wait_;
};

/// `co_await ctx.wait_for(event, d)` / `wait_until(event, t)`: resumes once the event is set
/// (auto-reset: once this waiter took a set) or the deadline passed, whichever is first, and
/// says which. Suspends like `co_await event` (where it resumes: see `Event::set`; on a
/// timeout, where `SleepAwaiter` says). No allocation.
/// Cancellation: in a job spawned with a `std::stop_token`, completes with `Error`
/// (`Cancelled`) at once when the stop came first (taking no set), and promptly when it is
/// requested while the coroutine waits; a set that reached the wait as the stop came is passed
/// on (an auto-reset event is set again), never lost. Errors: Error (Cancelled), see above.
/// Thread-safety: one awaiter per co_await.
class [[nodiscard]] TimedEventAwaiter {
 public:
  /// Made by `Context::wait_for` / `wait_until`; not for direct use.
  /// \param event the event to wait for.
  /// \param scheduler the job system whose timer service times the wait out.
  /// \param deadline_ns the deadline, TimerClock nanoseconds since its epoch.
  TimedEventAwaiter(Event& event, detail::Scheduler* scheduler, std::uint64_t deadline_ns) noexcept
      : event_(event) {
    entry_.scheduler = scheduler;
    entry_.deadline_ns = deadline_ns;
    entry_.object = &event;
  }
  TimedEventAwaiter(const TimedEventAwaiter&) = delete;
  TimedEventAwaiter& operator=(const TimedEventAwaiter&) = delete;
  /// \return true when the event is set already (auto-reset: this wait took the set) and no
  ///   stop was requested.
  bool await_ready() noexcept {
    stop_ = detail::current_job_stop();
    return !detail::stop_requested(stop_) && event_.try_wait();
  }
  /// Links the coroutine and arms the timer (and the stop's wake), unless the event was set,
  /// the deadline passed or the stop came.
  /// \param coroutine the waiting coroutine.
  /// \return false when the wait ended meanwhile (the coroutine goes on), else true.
  bool await_suspend(std::coroutine_handle<> coroutine) {
    if (detail::stop_requested(stop_)) return false;  // await_resume throws Cancelled
    entry_.stop = stop_wait_.arm(stop_, &detail::unlink_timed_event, &event_);
    return detail::suspend_coroutine_on({&detail::link_timed_event, &entry_, "Event", &event_},
                                        node_, entry_.scheduler, coroutine);
  }
  /// \return true when the event was set (taken), false when the deadline came first.
  /// Errors: Error (Cancelled) when the job's stop was requested.
  bool await_resume() {
    const bool stop_ended = stop_wait_.disarm();
    return detail::finish_timed_event_wait(event_, entry_, stop_ended, stop_,
                                           "co_await ctx.wait_for(event)");
  }

 private:
  Event& event_;
  detail::TimerEntry entry_;
  detail::WaitNode node_;
  const std::stop_token* stop_ = nullptr;  ///< the awaiting job's token (lives as long as it)
  detail::StopWait stop_wait_;
};

/// `co_await ctx.wait_for(counter, d)` / `wait_until(counter, t)`: resumes once the counter is
/// zero or the deadline passed, whichever is first, and says which. The wait goes through the
/// counter's list of value waiters with target 0 (see `ValueWaitAwaiter` for the cost while
/// linked), so, unlike `co_await ctx.wait(counter)`, it does not run the counter's jobs inline
/// first. Where it resumes: as `ValueWaitAwaiter`; on a timeout, as `SleepAwaiter`.
/// Cancellation: in a job spawned with a `std::stop_token`, completes with `Error`
/// (`Cancelled`) at once when the stop came first, and promptly when it is requested while the
/// coroutine waits (the stop unlinks it from the counter's value waiters).
/// Errors: on completion, rethrows the first exception a job of the counter threw;
/// Error (Cancelled), see above. No allocation. Thread-safety: one awaiter per co_await.
class [[nodiscard]] TimedCounterAwaiter {
 public:
  /// Made by `Context::wait_for` / `wait_until`; not for direct use.
  /// \param counter the counter to wait for.
  /// \param scheduler the job system whose timer service times the wait out.
  /// \param deadline_ns the deadline, TimerClock nanoseconds since its epoch.
  TimedCounterAwaiter(Counter& counter, detail::Scheduler* scheduler,
                      std::uint64_t deadline_ns) noexcept {
    entry_.scheduler = scheduler;
    entry_.deadline_ns = deadline_ns;
    waiter_.counter = &counter;
    waiter_.timer = &entry_;
  }
  TimedCounterAwaiter(const TimedCounterAwaiter&) = delete;
  TimedCounterAwaiter& operator=(const TimedCounterAwaiter&) = delete;
  /// \return true when the counter is zero already and no stop was requested.
  bool await_ready() noexcept {
    stop_ = detail::current_job_stop();
    return !detail::stop_requested(stop_) && detail::value_reached(*waiter_.counter, 0);
  }
  /// Links the coroutine as a value waiter (target 0) and arms the timer (and the stop's
  /// wake), unless the counter reached zero, the deadline passed or the stop came.
  /// \param coroutine the waiting coroutine.
  /// \return false when the wait ended meanwhile (the coroutine goes on), else true.
  bool await_suspend(std::coroutine_handle<> coroutine) {
    if (detail::stop_requested(stop_)) return false;  // await_resume throws Cancelled
    waiter_.stop = stop_wait_.arm(stop_, &detail::unlink_value_wait, &waiter_);
    return detail::suspend_coroutine_on(
        {&detail::link_value_wait, &waiter_, "a Counter", waiter_.counter}, node_, entry_.scheduler,
        coroutine);
  }
  /// \return true when the counter reached zero, false when the deadline came first.
  /// Errors: Error (Cancelled) when the job's stop was requested; else the counter's
  ///   captured exception, on completion.
  bool await_resume() {
    stop_wait_.disarm();
    // Linked and woken by the last signal, the counter may be gone: look at its exception
    // only when the drain said one is kept.
    return detail::finish_timed_counter_wait(*waiter_.counter, entry_,
                                             !waiter_.linked || node_.error_kept != 0, stop_,
                                             "co_await ctx.wait_for(counter)");
  }

 private:
  detail::TimerEntry entry_;
  detail::ValueWaiter waiter_;
  detail::WaitNode node_;
  const std::stop_token* stop_ = nullptr;  ///< the awaiting job's token (lives as long as it)
  detail::StopWait stop_wait_;
};

namespace this_fiber {

/// Suspends the calling plain code until the steady-clock time `time` has passed; returns at
/// once when it has. In a job the fiber suspends (the worker runs other jobs) with its timer
/// entry in the fiber, and resumes on any worker, usually within tens of microseconds of the
/// deadline on an idle system (a parked worker's futex wait times out there; docs/api.md,
/// "Time"); on a busy system at the next look for work of some worker after the deadline. On
/// any other thread the thread sleeps (clock_nanosleep).
/// Allocation: none. Thread-safety: any number of sleepers.
/// Errors: Error (Cancelled) in a job spawned with a stop token whose stop was requested: at
///   once when it was before the call, promptly (the sleep wakes) when it is requested while
///   the job sleeps; Error (FiberPoolExhausted) as `wait(counter)` (nothing lost).
/// \param time the deadline.
inline void sleep_until(TimerClock::time_point time) {
  detail::sleep_until_ns(detail::deadline_ns(time));
}

/// `sleep_until(now + duration)`; see there. A duration <= 0 returns at once.
/// \param duration how long to sleep (any std::chrono unit).
template <class Rep, class Period>
void sleep_for(const std::chrono::duration<Rep, Period>& duration) {
  detail::sleep_until_ns(detail::deadline_after(duration));
}

/// Waits in plain code until `event` is set (auto-reset: until this waiter took a set) or the
/// steady-clock time `time` passed, whichever is first. Suspends as `wait(event)` — in a job
/// the fiber (its node and timer entry live in the fiber), on another thread the thread parks
/// on its futex with the deadline as timeout. A timeout takes no set.
/// Allocation: none. Errors: Error (FiberPoolExhausted) as `wait(event)`; Error (Cancelled)
/// in a job spawned with a stop token whose stop was requested: at once (taking no set) when
/// it was before the call, promptly (the wait wakes) when it is requested while the job waits.
/// \param event the event; it must outlive the wait.
/// \param time the deadline.
/// \return true when the event was set (taken), false when the deadline came first.
inline bool wait_until(Event& event, TimerClock::time_point time) {
  return detail::wait_until_ns(event, detail::deadline_ns(time));
}
/// `wait_until(event, now + duration)`; see there.
/// \param event the event; it must outlive the wait.
/// \param duration how long to wait at most.
/// \return true when the event was set (taken), false on a timeout.
template <class Rep, class Period>
bool wait_for(Event& event, const std::chrono::duration<Rep, Period>& duration) {
  return detail::wait_until_ns(event, detail::deadline_after(duration));
}

/// Waits in plain code until `counter` is zero or the steady-clock time `time` passed,
/// whichever is first. The wait goes through the counter's value waiters (target 0): it does
/// not run the counter's jobs inline first. Suspends as `wait(counter, target)`.
/// Allocation: none. Errors: on completion, the first exception a job of the counter threw;
/// Error (Cancelled) in a job spawned with a stop token whose stop was requested: at once when
/// it was before the call, promptly (the wait wakes) when it is requested while the job waits;
/// Error (CounterMisuse) in a job waiting on the counter its own end signals;
/// Error (FiberPoolExhausted) as `wait(counter)`.
/// \param counter the counter; it must outlive the wait.
/// \param time the deadline.
/// \return true when the counter reached zero, false when the deadline came first.
inline bool wait_until(Counter& counter, TimerClock::time_point time) {
  return detail::wait_until_ns(counter, detail::deadline_ns(time));
}
/// `wait_until(counter, now + duration)`; see there.
/// \param counter the counter; it must outlive the wait.
/// \param duration how long to wait at most.
/// \return true when the counter reached zero, false on a timeout.
template <class Rep, class Period>
bool wait_for(Counter& counter, const std::chrono::duration<Rep, Period>& duration) {
  return detail::wait_until_ns(counter, detail::deadline_after(duration));
}

}  // namespace this_fiber

}  // namespace fiberjob
