// The timer heap (timer_queue.hpp): a binary min-heap of intrusive entries under a spin lock.
//
// Protocol (memory orders in docs/memory_ordering.md, "Timers"; model in
// tests/model/timer_model.cpp):
//   insert:  under the lock, push and sift; publish the earliest deadline (relaxed store).
//   expire:  under the lock, pop every due entry and set its `firing` (relaxed: the lock
//            orders it for cancel); unlock; then per entry, in deadline order: a timed wait's
//            unlink runs under its primitive's lock; store `firing` = 0 (release) — the last
//            touch of the entry; then wake the nodes whose timer won, as one chain.
//   cancel:  under the lock, remove the entry if it is still queued; else wait (acquire) until
//            `firing` is 0.
//   remove:  a sleep's stop callback: under the lock, remove the entry if it is still queued;
//            then it owns the wake (insert committed the sleep's StopWake under this lock).
// Whoever removes a waiter's node from its primitive owns the wake (docs/decisions.md, "Timed
// waits fit the wait queue"), so a timeout and a set/signal racing for one waiter wake it
// exactly once.

#include "timer_queue.hpp"

#include "counter_wait_list.hpp"
#include "platform/futex.hpp"

namespace fiberjob::detail {

TimerQueue::TimerQueue() { heap_.reserve(kInitialCapacity); }

void TimerQueue::lock() noexcept {
  for (int spins = 0;; ++spins) {
    // acquire: pairs with the release store in unlock(): the previous holder's heap writes
    // are visible. relaxed test first: spin on a shared line, not with exchanges.
    if (locked_.load(std::memory_order_relaxed) == 0 &&
        locked_.exchange(1, std::memory_order_acquire) == 0) {
      return;
    }
    spin_then_yield(spins);  // the holder may be preempted
  }
}

void TimerQueue::unlock() noexcept {
  locked_.store(0, std::memory_order_release);  // release: pairs with lock()'s exchange
}

void TimerQueue::place(TimerEntry* entry, std::uint32_t index) noexcept {
  heap_[index] = entry;
  entry->heap_index = index;
}

void TimerQueue::sift_up(std::uint32_t index) noexcept {
  TimerEntry* entry = heap_[index];
  while (index > 0) {
    const std::uint32_t parent = (index - 1) / 2;
    if (heap_[parent]->deadline_ns <= entry->deadline_ns) break;
    place(heap_[parent], index);
    index = parent;
  }
  place(entry, index);
}

void TimerQueue::sift_down(std::uint32_t index) noexcept {
  TimerEntry* entry = heap_[index];
  const auto size = static_cast<std::uint32_t>(heap_.size());
  for (;;) {
    std::uint32_t child = 2 * index + 1;
    if (child >= size) break;
    if (child + 1 < size && heap_[child + 1]->deadline_ns < heap_[child]->deadline_ns) ++child;
    if (entry->deadline_ns <= heap_[child]->deadline_ns) break;
    place(heap_[child], index);
    index = child;
  }
  place(entry, index);
}

void TimerQueue::remove_at(std::uint32_t index) noexcept {
  TimerEntry* removed = heap_[index];
  TimerEntry* last = heap_.back();
  heap_.pop_back();
  removed->heap_index = TimerEntry::kNotQueued;
  if (last == removed) return;
  place(last, index);
  sift_down(index);
  sift_up(last->heap_index);
}

void TimerQueue::publish_top() noexcept {
  // relaxed: see next_deadline(); the lock orders the heap itself.
  next_deadline_.store(heap_.empty() ? kNever : heap_.front()->deadline_ns,
                       std::memory_order_relaxed);
}

TimerQueue::Inserted TimerQueue::insert(TimerEntry& entry, StopWake* stop) noexcept {
  entry.timed_out = false;
  entry.next_fired = nullptr;
  lock();
  if (stop != nullptr && !stop->commit(*entry.node)) {  // the sleep's stop came first
    unlock();
    return Inserted::Stopped;
  }
  // Past kInitialCapacity the vector doubles (an allocation under the lock, once per doubling;
  // the capacity is kept, so steady state allocates nothing).
  heap_.push_back(&entry);
  sift_up(static_cast<std::uint32_t>(heap_.size() - 1));
  const bool earliest = heap_.front() == &entry;
  if (earliest) publish_top();
  unlock();
  return earliest ? Inserted::Earliest : Inserted::Later;
}

bool TimerQueue::remove(TimerEntry& entry) noexcept {
  lock();
  const bool queued = entry.heap_index != TimerEntry::kNotQueued;
  if (queued) {
    const bool was_top = entry.heap_index == 0;
    remove_at(entry.heap_index);
    if (was_top) publish_top();
  }
  unlock();
  return queued;
}

void TimerQueue::cancel(TimerEntry& entry) noexcept {
  if (remove(entry)) return;
  // An expirer took it (or a sleep's stop callback did: then `firing` was never set): wait for
  // the expirer's last touch. acquire: pairs with the release store of `firing` in expire(),
  // so `timed_out` is read after the expirer wrote it.
  for (int spins = 0; entry.firing.load(std::memory_order_acquire) != 0; ++spins) {
    spin_then_yield(spins);
  }
}

bool TimerQueue::expire(std::uint64_t now_ns, Worker* current) noexcept {
  TimerEntry* first = nullptr;
  TimerEntry** tail = &first;
  lock();
  while (!heap_.empty() && heap_.front()->deadline_ns <= now_ns) {
    TimerEntry* entry = heap_.front();
    remove_at(0);
    // relaxed: cancel reads it after taking the lock we hold, which orders it.
    entry->firing.store(1, std::memory_order_relaxed);
    *tail = entry;  // deadline order: the chain wakes the earliest first
    tail = &entry->next_fired;
  }
  *tail = nullptr;
  if (first != nullptr) publish_top();
  unlock();
  if (first == nullptr) return false;
  WaitNode* wake_head = nullptr;
  WaitNode** wake_tail = &wake_head;
  for (TimerEntry* entry = first; entry != nullptr;) {
    TimerEntry* const next = entry->next_fired;  // before `firing` = 0 lets the waiter go
    WaitNode* const node = entry->node;
    const bool won = entry->unlink == nullptr || entry->unlink(entry->object, *node);
    entry->timed_out = won;
    // release: pairs with the acquire load in cancel(). Our last touch of the entry; when the
    // timer won, nobody else wakes the node, so it stays valid until the wake below.
    entry->firing.store(0, std::memory_order_release);
    if (won) {
      node->next = nullptr;
      *wake_tail = node;
      wake_tail = &node->next;
    }
    entry = next;
  }
  wake_list(wake_head, current);
  return true;
}

}  // namespace fiberjob::detail
