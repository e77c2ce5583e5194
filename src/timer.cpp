// Sleeps and timed waits over the timer heap (timer_queue.cpp): the linkers that arm a timer
// under a primitive's lock, the plain-code and coroutine bodies, and the workers' expiry.
// A plain thread that is no job's fiber does not use the timer service: it sleeps, or waits on
// its futex with the deadline as timeout and unlinks its node itself when that passes.

#include "fiberjob/timer.hpp"

#include <cerrno>
#include <cstdio>
#include <ctime>

#include "counter_wait_list.hpp"
#include "fiber_switch.hpp"
#include "fiberjob/detail/stop_wake.hpp"
#include "fiberjob/diagnostics.hpp"
#include "platform/futex.hpp"
#include "scheduler.hpp"
#include "timer_service.hpp"
#include "worker.hpp"

namespace fiberjob::detail {

/// The Event's private state, for its timed waits.
struct EventAccess {
  /// WaitLinker of a timed wait on a job's fiber or coroutine: `object` is the TimerEntry.
  static bool link_timed(void* object, WaitNode& node) noexcept {
    TimerEntry& entry = *static_cast<TimerEntry*>(object);
    Event& event = *static_cast<Event*>(entry.object);
    const std::uint32_t state = event.queue_.lock();
    if (state == Event::kSet) {  // set meanwhile: take it (auto-reset) and go on
      event.queue_.unlock(event.mode_ == Event::Mode::Auto ? 0 : Event::kSet);
      return false;
    }
    if (entry.deadline_ns <= steady_now_ns()) {
      event.queue_.unlock(state);
      entry.timed_out = true;
      return false;
    }
    if (entry.stop != nullptr && !entry.stop->commit(node)) {  // the job's stop came first
      event.queue_.unlock(state);
      return false;
    }
    event.queue_.push_back(node);
    entry.node = &node;
    entry.unlink = &unlink;
    Scheduler* const notify = arm_timer(entry);  // under the lock: see the file comment
    event.queue_.unlock(state);
    notify_timer_armed(notify);
    return true;
  }
  /// TimerEntry::unlink: removes `node` from the event's queue if a set has not taken it.
  static bool unlink(void* object, WaitNode& node) noexcept {
    return static_cast<Event*>(object)->remove(node);
  }
  /// Passes on a set that a stopped waiter took: an auto-reset event's set is the next
  /// waiter's (a manual-reset event's set stays, nothing was taken).
  static void give_back(Event& event) noexcept {
    if (event.mode_ == Event::Mode::Auto) event.set();
  }
  /// Links a plain thread's node with no timer; false when the event was set (taken).
  static bool link_untimed(Event& event, WaitNode& node) noexcept {
    StoppableWait wait;  // a plain thread: no stop
    wait.primitive = &event;
    return Event::link_waiter(&wait, node);
  }
};

namespace {

/// A plain thread's timed wait once its node is linked (with no timer): parks on the node's
/// futex until woken or `deadline_ns`; then unlinks the node itself, and whoever removes the
/// node owns the wake. Returns true when woken by the primitive, false on a timeout.
bool park_until(WaitNode& node, std::uint64_t deadline_ns,
                bool (*unlink)(void* object, WaitNode& node) noexcept, void* object) noexcept {
  // acquire: pairs with the waker's release store of `woken` (wake_list).
  while (node.woken.load(std::memory_order_acquire) == 0) {
    if (futex_wait_until(node.woken, 0, deadline_ns)) continue;
    if (unlink(object, node)) return false;
    // A waker took the node first: it will store `woken`, its last touch.
    while (node.woken.load(std::memory_order_acquire) == 0) futex_wait(node.woken, 0);  // acq
    return true;
  }
  return true;
}

/// Sleeps the calling thread until `deadline_ns` (absolute, CLOCK_MONOTONIC).
void sleep_thread_until(std::uint64_t deadline_ns) noexcept {
  timespec at{};
  at.tv_sec = static_cast<time_t>(deadline_ns / 1'000'000'000u);
  at.tv_nsec = static_cast<long>(deadline_ns % 1'000'000'000u);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == EINTR) {
  }
}

/// Makes `node` a plain thread's node.
void make_thread_node(WaitNode& node) noexcept {
  node.kind = WaitNode::Kind::Thread;
  node.thread_token = current_token();
}

}  // namespace

std::uint64_t steady_now_ns() noexcept { return deadline_ns(TimerClock::now()); }

Scheduler* arm_timer(TimerEntry& entry) noexcept {
  Scheduler* const scheduler = entry.scheduler;  // before the insert: then it may fire at once
  return scheduler->timers().insert(entry) == TimerQueue::Inserted::Earliest ? scheduler : nullptr;
}

void notify_timer_armed(Scheduler* scheduler) noexcept {
  if (scheduler != nullptr) scheduler->notify_timer_armed();
}

void Scheduler::expire_due_timers(Worker& worker) noexcept {
  const std::uint64_t now = steady_now_ns();
  if (timers_.next_deadline() <= now) timers_.expire(now, &worker);
}

std::uint64_t Scheduler::park_deadline(std::uint64_t idle_since_ns) const noexcept {
  const std::uint64_t timer = timers_.next_deadline();
  // relaxed: a hint; the report is elected by the exchange in watch_for_hang.
  if (config_.hang_report_after_ms == 0 || hang_reported_.load(std::memory_order_relaxed)) {
    return timer;
  }
  const std::uint64_t look =
      idle_since_ns + std::uint64_t{config_.hang_report_after_ms} * 1'000'000u;
  return look < timer ? look : timer;
}

void Scheduler::watch_for_hang(const Worker& worker, std::uint64_t& idle_since_ns,
                               std::uint64_t now_ns) noexcept {
  const std::uint64_t period_ns = std::uint64_t{config_.hang_report_after_ms} * 1'000'000u;
  if (period_ns == 0 || now_ns - idle_since_ns < period_ns) return;
  idle_since_ns = now_ns;  // the next look one period later
  // relaxed: a hint, as in park_deadline.
  if (hang_reported_.load(std::memory_order_relaxed)) return;
  for (std::size_t i = 0; i < config_.worker_count; ++i) {
    // relaxed: a snapshot, as write_diagnostics reads the phases.
    if (workers_[i].get() != &worker &&
        workers_[i]->phase.load(std::memory_order_relaxed) != WorkerPhase::Parked) {
      return;
    }
  }
  if (timers_.armed() || blocking_.pending() != 0 || has_visible_work(worker)) return;
  if (attached_thread_may_wake()) return;
  const Stats now = stats();
  // Each worker thread runs its dispatch loop on one pooled fiber; any other fiber in use is
  // a suspended job. A suspended coroutine job holds no fiber: it counts as alive.
  if (now.fibers_in_use <= config_.worker_count && now.coroutine_jobs_alive == 0) return;
  if (hang_reported_.exchange(true, std::memory_order_relaxed)) return;  // relaxed: elects one
  std::fprintf(stderr,
               "fiberjob: every worker has been idle for %u ms while jobs stay suspended and "
               "no job, timer, blocking call or attached thread of this job system can wake "
               "them (Config::hang_report_after_ms). A thread that is neither a worker nor "
               "attached may still wake them, e.g. a main thread that sets an Event later: if "
               "so, raise that field above the longest such wait, or attach that thread "
               "(AttachedWorker), or set the field to 0. What each waits on follows.\n",
               static_cast<unsigned>(config_.hang_report_after_ms));
  write_diagnostics(stderr);
}

bool Scheduler::attached_thread_may_wake() const noexcept {
  for (std::size_t i = config_.worker_count; i < workers_.size(); ++i) {
    const Worker& slot = *workers_[i];
    // relaxed loads: a snapshot, as write_diagnostics reads them; pairs with nothing.
    if (slot.slot_taken.load(std::memory_order_relaxed) &&
        slot.native.waiting_on.load(std::memory_order_relaxed) == nullptr &&
        slot.native.waiting_on_primitive.load(std::memory_order_relaxed) == nullptr) {
      return true;
    }
  }
  return false;
}

bool link_sleep(void* object, WaitNode& node) noexcept {
  TimerEntry& entry = *static_cast<TimerEntry*>(object);
  if (entry.deadline_ns <= steady_now_ns()) return false;
  entry.node = &node;
  entry.unlink = nullptr;
  Scheduler* const scheduler = entry.scheduler;  // before the insert: then it may fire at once
  switch (scheduler->timers().insert(entry, entry.stop)) {
    case TimerQueue::Inserted::Stopped:
      entry.node = nullptr;  // never armed: nothing for disarm to cancel
      return false;
    case TimerQueue::Inserted::Earliest:
      notify_timer_armed(scheduler);
      break;
    case TimerQueue::Inserted::Later:
      break;
  }
  return true;
}

bool unlink_sleep(void* object, WaitNode& /*node*/) noexcept {
  TimerEntry& entry = *static_cast<TimerEntry*>(object);
  return entry.scheduler->timers().remove(entry);
}

bool link_timed_event(void* entry, WaitNode& node) noexcept {
  return EventAccess::link_timed(entry, node);
}

bool unlink_timed_event(void* event, WaitNode& node) noexcept {
  return EventAccess::unlink(event, node);
}

void disarm(TimerEntry& entry) noexcept {
  if (entry.node != nullptr && entry.scheduler != nullptr) entry.scheduler->timers().cancel(entry);
}

bool finish_timed_counter_wait(Counter& counter, TimerEntry& entry, bool check_error,
                               const std::stop_token* stop, const char* call) {
  disarm(entry);
  if (stop_requested(stop)) throw_cancelled(call);
  if (entry.timed_out) return false;
  if (check_error) CounterWaitList::rethrow_if_error(counter);
  return true;
}

bool finish_timed_event_wait(Event& event, TimerEntry& entry, bool stop_ended,
                             const std::stop_token* stop, const char* call) {
  disarm(entry);
  if (stop_requested(stop)) {
    // The set (not the stop, not the deadline) ended the wait, and the stop came meanwhile:
    // the job throws, so the set it took goes to the next waiter instead of being lost.
    if (!stop_ended && !entry.timed_out) EventAccess::give_back(event);
    throw_cancelled(call);
  }
  return !entry.timed_out;
}

void sleep_until_ns(std::uint64_t deadline_ns) {
  if (Fiber* self = current_fiber()) {
    throw_if_job_stopped(self, "this_fiber::sleep_for");
    if (deadline_ns <= steady_now_ns()) return;
    TimerEntry entry;
    entry.deadline_ns = deadline_ns;
    entry.scheduler = self->scheduler;
    StopWait stop;  // a stop wakes the sleep: its callback takes the entry off the heap
    entry.stop = stop.arm(self->job_stop, &unlink_sleep, &entry);
    const WaitLinker linker{&link_sleep, &entry, "a sleep"};
    if (!wait_on_fiber_linked(self, linker)) {
      // An attached thread with no fiber: it parks on its own stack with the entry in the
      // timer heap (the workers' parks fire it), so the stop (still armed) wakes it too.
      park_own_stack(self, linker);
    }
    stop.disarm();  // first: waits for a callback still running elsewhere
    disarm(entry);
    throw_if_job_stopped(self, "this_fiber::sleep_for");
    return;
  }
  sleep_thread_until(deadline_ns);
}

bool wait_until_ns(Event& event, std::uint64_t deadline_ns) {
  throw_if_stopped("this_fiber::wait_for(event)");
  if (event.try_wait()) return true;
  TimerEntry entry;
  entry.deadline_ns = deadline_ns;
  entry.object = &event;
  if (Fiber* self = current_fiber()) {
    entry.scheduler = self->scheduler;
    StopWait stop;  // a stop wakes the wait: its callback unlinks the node from the event
    entry.stop = stop.arm(self->job_stop, &unlink_timed_event, &event);
    const WaitLinker linker{&link_timed_event, &entry, "Event", &event};
    if (!wait_on_fiber_linked(self, linker)) {
      // An attached thread with no fiber: it parks on its own stack, linked as on its fiber
      // (the event's queue and the timer heap, whose entry the workers' parks fire), so the
      // stop (still armed) wakes it too, and the deadline.
      park_own_stack(self, linker);
    }
    const bool stop_ended = stop.disarm();  // first: waits for a callback running elsewhere
    return finish_timed_event_wait(event, entry, stop_ended, self->job_stop,
                                   "this_fiber::wait_for(event)");
  }
  WaitNode node;
  make_thread_node(node);
  if (!EventAccess::link_untimed(event, node)) return true;
  return park_until(node, deadline_ns, &EventAccess::unlink, &event);
}

bool wait_until_ns(Counter& counter, std::uint64_t deadline_ns) {
  throw_if_stopped("this_fiber::wait_for(counter)");
  if (!value_reached(counter, 0)) {
    TimerEntry entry;
    entry.deadline_ns = deadline_ns;
    ValueWaiter waiter;
    waiter.counter = &counter;
    Fiber* self = current_fiber();
    if (self != nullptr) {
      check_not_own_counter(self, counter);
      entry.scheduler = self->scheduler;
      waiter.timer = &entry;
      StopWait stop;  // a stop wakes the wait: its callback unlinks the value waiter
      waiter.stop = stop.arm(self->job_stop, &CounterWaitList::unlink_value_waiter, &waiter);
      if (wait_on_fiber_linked(self, {&link_value_wait, &waiter, "a Counter", &counter})) {
        stop.disarm();  // first: waits for a callback still running elsewhere
        // Linked and woken by the last signal, the counter may be gone: look at it only when
        // the drain said it keeps an exception.
        const bool check_error = !waiter.linked || CounterWaitList::take_error_kept(self->node);
        return finish_timed_counter_wait(counter, entry, check_error, self->job_stop,
                                         "this_fiber::wait_for(counter)");
      }
      // An attached thread with no fiber: it parks, timing out by itself (no timer), with the
      // stop still armed: the stop's unlink and the timeout's race under the counter's lock.
      waiter.timer = nullptr;  // (nothing was linked)
      flush_deferred_signals(*self->worker);
      WaitNode node;
      make_thread_node(node);
      const bool linked = CounterWaitList::link_value_waiter(&waiter, node);
      const bool woken =
          !linked || park_until(node, deadline_ns, &CounterWaitList::unlink_value_waiter, &waiter);
      stop.disarm();  // first: waits for a callback still running elsewhere
      throw_if_job_stopped(self, "this_fiber::wait_for(counter)");
      if (!woken) return false;
      // As on a fiber: once woken by the last signal, the counter may be gone.
      if (!linked || node.error_kept != 0) CounterWaitList::rethrow_if_error(counter);
      return true;
    }
    WaitNode node;
    make_thread_node(node);
    if (CounterWaitList::link_value_waiter(&waiter, node)) {
      if (!park_until(node, deadline_ns, &CounterWaitList::unlink_value_waiter, &waiter)) {
        return false;
      }
      // Woken by the last signal: the counter may be gone unless it keeps an exception.
      if (node.error_kept == 0) return true;
    }
  }
  CounterWaitList::rethrow_if_error(counter);
  return true;
}

}  // namespace fiberjob::detail
