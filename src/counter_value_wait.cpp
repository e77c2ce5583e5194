// Waiting for a counter to fall to a value: a second, unordered list of waiters on the counter
// (Counter::value_waiters_), owned through a lock bit in the count word itself.
//
// Protocol (memory orders in docs/memory_ordering.md, model in tests/model/value_wait_model.cpp):
//   link:    on a settled count above the target with kValueLocked clear, CAS the count word
//            to word | kValueLocked (acquire); push the waiter; CAS the lock bit off and
//            kValueWaiters on (release) — the linker's last touch of the counter.
//   signal:  a signal that sees a flag bit (one compare on its usual path) comes here: it
//            spins while kValueLocked is set, then makes its decrement and takes the lock in
//            one CAS (acq_rel); it unlinks the waiters whose target the new count meets,
//            clears the lock (and kValueWaiters when the list is empty) in a CAS (release),
//            then wakes them. The decrement to zero instead moves to the kWaking sentinel
//            exactly as the plain final signal does, and takes every value waiter with it.
// Why the flags live in the count word: the decision "are there value waiters?" is then made
// by the same CAS that decrements, so no signal can miss a waiter that linked before it, and
// while a signaller owns the list no other signal can bring the count to zero (they spin), so
// the counter cannot be destroyed under it. Counters without value waiters never take this
// path: their signals pay one compare.

#include <sched.h>

#include "counter_wait_list.hpp"
#include "fiber_switch.hpp"
#include "fiberjob/counter_wait.hpp"
#include "fiberjob/error.hpp"
#include "fiberjob/this_fiber.hpp"
#include "platform/futex.hpp"
#include "timer_service.hpp"
#include "worker.hpp"

namespace fiberjob {
namespace detail {
namespace {

/// Unlinks the waiters whose target `count` meets; returns their nodes as a chain.
WaitNode* take_satisfied(std::int64_t count, ValueWaiter*& list) noexcept {
  WaitNode* chain = nullptr;
  ValueWaiter** link = &list;
  while (ValueWaiter* waiter = *link) {
    if (waiter->target >= count) {
      *link = waiter->next;
      WaitNode* node = waiter->node;  // read before the waiter can run (it owns `waiter`)
      node->next = chain;
      chain = node;
    } else {
      link = &waiter->next;
    }
  }
  return chain;
}

}  // namespace

bool value_reached(const Counter& counter, std::int64_t target) noexcept {
  const std::int64_t value = CounterWaitList::load_settled(counter);  // acquire
  return (value & CounterWaitList::kCountMask) <= target;
}

void check_target(std::int64_t target) {
  if (target < 0) {
    throw Error(ErrorCode::CounterMisuse,
                "fiberjob: wait(counter, target) with a negative target: a count never goes "
                "below zero, so the wait could never return. Use a target >= 0");
  }
}

bool link_value_wait(void* object, WaitNode& node) noexcept {
  return CounterWaitList::link_value_waiter(object, node);
}

bool unlink_value_wait(void* object, WaitNode& node) noexcept {
  return CounterWaitList::unlink_value_waiter(object, node);
}

bool CounterWaitList::link_value_waiter(void* object, WaitNode& node) noexcept {
  ValueWaiter& waiter = *static_cast<ValueWaiter*>(object);
  Counter& counter = *waiter.counter;
  waiter.node = &node;
  if (waiter.timer != nullptr && waiter.timer->deadline_ns <= steady_now_ns() &&
      !value_reached(counter, waiter.target)) {
    waiter.timer->timed_out = true;  // the deadline passed before the wait could begin
    return false;
  }
  // acquire: pairs with the signals' release (a count we see met lets the waiter see the
  // jobs' writes) and with the release of the previous owner of the list.
  std::int64_t value = counter.value_.load(std::memory_order_acquire);
  for (int spins = 0;; ++spins) {
    if (is_waking(value) || (value & kValueLocked) != 0) {  // a drain or a list owner: wait
      spin_then_yield(spins);  // the lock holder or the drainer may be preempted
      value = counter.value_.load(std::memory_order_acquire);  // acquire: as above
      continue;
    }
    if ((value & kCountMask) <= waiter.target) return false;  // met: link nothing
    // acquire: as above (we own the list from here).
    if (counter.value_.compare_exchange_weak(value, value | kValueLocked, std::memory_order_acquire,
                                             std::memory_order_acquire)) {
      break;
    }
  }
  value |= kValueLocked;
  if (waiter.stop != nullptr && !waiter.stop->commit(node)) {  // the job's stop came first
    // release: publishes the (unchanged) list to its next owner; only add() changes the word
    // meanwhile. Our last touch of the counter.
    while (!counter.value_.compare_exchange_weak(
        value, value & ~kValueLocked, std::memory_order_release, std::memory_order_relaxed)) {
    }
    return false;
  }
  waiter.next = counter.value_waiters_;
  counter.value_waiters_ = &waiter;
  waiter.linked = true;  // read by the waiter once woken (ordered by the wake)
  // A timed wait: armed under the list's lock, so a signal that takes the waiter finds it
  // armed and the waiter's cancel after its wake finds it in the heap or fired.
  Scheduler* notify = nullptr;
  if (TimerEntry* timer = waiter.timer) {
    timer->node = &node;
    timer->unlink = &unlink_value_waiter;
    timer->object = &waiter;
    notify = arm_timer(*timer);
  }
  // release: publishes the list to the next owner (pairs with its acquiring CAS). Only add()
  // changes the word meanwhile (signals spin), so the loop ends quickly. Our last touch of
  // the counter: the waiter may be woken (and go on) once a signal owns the list after us.
  while (!counter.value_.compare_exchange_weak(value, (value & ~kValueLocked) | kValueWaiters,
                                               std::memory_order_release,
                                               std::memory_order_relaxed)) {
  }
  notify_timer_armed(notify);  // after the lock: the futex wake is no longer under it
  return true;
}

bool CounterWaitList::unlink_value_waiter(void* object, WaitNode& /*node*/) noexcept {
  ValueWaiter& waiter = *static_cast<ValueWaiter*>(object);
  Counter& counter = *waiter.counter;
  // acquire: pairs with the release of the list's previous owner (its list writes).
  std::int64_t value = counter.value_.load(std::memory_order_acquire);
  for (int spins = 0;; ++spins) {
    if (is_waking(value) || (value & kValueLocked) != 0) {  // a drain or a list owner: wait
      spin_then_yield(spins);
      value = counter.value_.load(std::memory_order_acquire);  // acquire: as above
      continue;
    }
    // No value waiter left (a signal took them all; the count may be zero): ours was taken.
    // The lock is never taken on such a word: a count of zero must read as zero to the
    // waits for zero, and only a list with waiters needs the lock.
    if ((value & kValueWaiters) == 0) return false;
    // acquire: as above (we own the list from here).
    if (counter.value_.compare_exchange_weak(value, value | kValueLocked, std::memory_order_acquire,
                                             std::memory_order_acquire)) {
      break;
    }
  }
  bool removed = false;
  for (ValueWaiter** link = &counter.value_waiters_; *link != nullptr; link = &(*link)->next) {
    if (*link == &waiter) {
      *link = waiter.next;
      removed = true;
      break;
    }
  }
  const std::int64_t keep = counter.value_waiters_ != nullptr ? kValueWaiters : 0;
  value |= kValueLocked;
  // release: publishes the list to its next owner; only add() changes the word meanwhile.
  // The timer's last touch of the counter.
  while (!counter.value_.compare_exchange_weak(
      value, (value & kCountMask) | keep, std::memory_order_release, std::memory_order_relaxed)) {
  }
  return removed;
}

void CounterWaitList::signal_value_waiters(Counter& counter, Worker* current,
                                           std::int64_t units) noexcept {
  // relaxed: only the first guess of the CAS below.
  std::int64_t value = counter.value_.load(std::memory_order_relaxed);
  std::int64_t count = 0;
  for (int spins = 0;; ++spins) {
    if (!has_value_flags(value)) {  // the list emptied meanwhile: the plain signal
      signal(counter, current, units);
      return;
    }
    if ((value & kValueLocked) != 0) {
      spin_then_yield(spins);  // the lock holder or the drainer may be preempted
      value = counter.value_.load(std::memory_order_relaxed);  // relaxed: a guess
      continue;
    }
    count = (value & kCountMask) - units;
    if (count < 0) {
      die_with(
          "fiberjob: Counter::signal on a counter with no outstanding unit: it was "
          "signalled more often than jobs were added. Every signal needs a matching add.");
    }
    const std::int64_t next = count == 0 ? kWaking : count | kValueWaiters | kValueLocked;
    // acq_rel: as the CAS of signal() (publishes the job's writes; the final signaller sees
    // every earlier job's), and acquire of the list from its previous owner's release.
    if (counter.value_.compare_exchange_weak(value, next, std::memory_order_acq_rel,
                                             std::memory_order_relaxed)) {
      break;
    }
  }
  WaitNode* woken = take_satisfied(count, counter.value_waiters_);
  if (count == 0) {  // the final signal: every value waiter is met; drain as signal() does
    // acq_rel: as the drain exchange in signal().
    WaitNode* drained = counter.waiters_.exchange(nullptr, std::memory_order_acq_rel);
    // As in signal(): whether the woken waiters (the value waiters too: a timed wait rethrows)
    // must look at the counter's exception, read before our last touch of it.
    const bool error_kept = (woken != nullptr || drained != nullptr) && may_keep_error(counter);
    // release: as the restore in signal(); our last touch of the counter.
    counter.value_.fetch_sub(kWaking, std::memory_order_release);
    if (error_kept) [[unlikely]] {
      woken = note_error_kept(woken);
      drained = note_error_kept(drained);
    }
    wake_list(woken, current);
    wake_list(drained, current);
    return;
  }
  const std::int64_t keep = counter.value_waiters_ != nullptr ? kValueWaiters : 0;
  value = count | kValueWaiters | kValueLocked;
  // release: publishes the list to its next owner; only add() changes the word meanwhile.
  // Our last touch of the counter.
  while (!counter.value_.compare_exchange_weak(
      value, (value & kCountMask) | keep, std::memory_order_release, std::memory_order_relaxed)) {
  }
  wake_list(woken, current);
}

}  // namespace detail

void this_fiber::wait(Counter& counter, std::int64_t target) {
  if (target == 0) {  // the wait for zero, with its rethrow; a plain thread parks
    if (detail::current_fiber() != nullptr) {
      wait(counter);
      return;
    }
    if (detail::CounterWaitList::wait_on_thread(counter)) {
      detail::CounterWaitList::rethrow_if_error(counter);
    }
    return;
  }
  detail::check_target(target);
  // A wait that need not suspend completes normally also after a stop (docs/api.md, Errors,
  // Cancelled), as `co_await ctx.wait(counter, target)` does.
  if (detail::value_reached(counter, target)) return;
  const detail::Fiber* self = detail::current_fiber();
  if (self != nullptr) detail::throw_if_job_stopped(self, "this_fiber::wait(counter, target)");
  detail::ValueWaiter waiter;
  waiter.counter = &counter;
  waiter.target = target;
  detail::StopWait stop;  // a stop wakes the wait: its callback unlinks the waiter
  if (self != nullptr) waiter.stop = stop.arm(self->job_stop, &detail::unlink_value_wait, &waiter);
  detail::block_on({&detail::link_value_wait, &waiter, "a Counter's value", &counter});
  stop.disarm();  // first: waits for a callback still running elsewhere
  // Read the fiber again: the wait may have resumed on another thread, but the fiber record
  // (and its job's token) is the same one.
  if (self != nullptr) detail::throw_if_job_stopped(self, "this_fiber::wait(counter, target)");
}

}  // namespace fiberjob
