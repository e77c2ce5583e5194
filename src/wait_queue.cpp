// The wait queue of the primitives (Event, Mutex, ConditionVariable, Semaphore, wait-for-value):
// a spin lock sharing its word with the primitive's state, a FIFO of intrusive nodes, and the
// three ways a waiter suspends on it (fiber, parked thread, coroutine).
//
// Protocol (memory orders in docs/memory_ordering.md, model in tests/model/wait_queue_model.cpp):
//   lock:    CAS word (unlocked) -> word | kLocked (acquire);
//   unlock:  store new state (release) — the section owner's last touch of the primitive;
//   waiter:  its linker runs under the lock after the waiter stopped running: it either
//            links the node (the waiter stays suspended) or sees the condition met;
//   waker:   under the lock detaches the nodes it wakes, unlocks, then wakes them.
// A waiter is woken only from a chain detached under the lock it linked under, so its
// linker's unlock happens before its wake, and a woken waiter may destroy the primitive.

#include "fiberjob/detail/wait_queue.hpp"

#include <sched.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "await_chain_access.hpp"
#include "counter_wait_list.hpp"
#include "fiber_switch.hpp"
#include "platform/futex.hpp"
#include "stoppable_block.hpp"
#include "worker.hpp"

namespace fiberjob::detail {

namespace {
/// The identity of a plain thread (its address) for ownership checks.
thread_local const char t_thread_token = 0;

/// Hands out JobRoot::lock_owner values: odd, so that they never equal the address of a
/// fiber, frame or thread token (all aligned), and never reused (2^63 of them).
/// relaxed: only the uniqueness of each value matters, which the RMW gives.
std::atomic<std::uint64_t> g_next_lock_owner{1};

const void* as_token(std::uint64_t lock_owner) noexcept {
  return reinterpret_cast<const void*>(static_cast<std::uintptr_t>(lock_owner));
}
}  // namespace

std::uint32_t WaitQueue::lock() noexcept {
  // relaxed: only the first guess of the CAS below.
  std::uint32_t word = word_.load(std::memory_order_relaxed);
  for (int spins = 0;; ++spins) {
    // acquire: pairs with the release store of the previous unlock (its list writes and the
    // state are visible) and with a try_update's release.
    if ((word & kLocked) == 0 &&
        word_.compare_exchange_weak(word, word | kLocked, std::memory_order_acquire,
                                    std::memory_order_relaxed)) {
      return word;
    }
    if ((word & kLocked) != 0) {
      // The holder runs a few pointer operations; if it was preempted, let it run.
      spin_then_yield(spins);
      word = word_.load(std::memory_order_relaxed);  // relaxed: a guess, as above
    }
  }
}

void WaitQueue::unlock(std::uint32_t state) noexcept {
  // release: pairs with the acquire CAS of the next lock() and with state()'s acquire load.
  word_.store(state & ~kLocked, std::memory_order_release);
}

void WaitQueue::push_back(WaitNode& node) noexcept {
  node.next = nullptr;
  if (tail_ != nullptr) {
    tail_->next = &node;
  } else {
    head_ = &node;
  }
  tail_ = &node;
}

WaitNode* WaitQueue::pop_front() noexcept {
  WaitNode* node = head_;
  if (node != nullptr) {
    head_ = node->next;
    if (head_ == nullptr) tail_ = nullptr;
    node->next = nullptr;
  }
  return node;
}

bool WaitQueue::remove(WaitNode& node) noexcept {
  WaitNode* previous = nullptr;
  for (WaitNode* at = head_; at != nullptr; previous = at, at = at->next) {
    if (at != &node) continue;
    (previous != nullptr ? previous->next : head_) = node.next;
    if (tail_ == &node) tail_ = previous;
    node.next = nullptr;
    return true;
  }
  return false;
}

std::int64_t WaitQueue::size_up_to(std::int64_t limit) const noexcept {
  std::int64_t size = 0;
  for (const WaitNode* node = head_; node != nullptr && size < limit; node = node->next) ++size;
  return size;
}

WaitNode* WaitQueue::take_all() noexcept {
  WaitNode* chain = head_;
  head_ = nullptr;
  tail_ = nullptr;
  return chain;
}

void wake_chain(WaitNode* head) noexcept { wake_list(head, current_worker()); }

void block_on(WaitLinker linker) {
  if (Fiber* self = current_fiber()) {
    // An attached thread with no fiber: it parks on its own stack.
    if (!wait_on_fiber_linked(self, linker)) park_own_stack(self, linker);
    return;
  }
  park_thread_linked(linker, &t_thread_token);
}

bool park_thread_linked(WaitLinker linker, const void* token) noexcept {
  WaitNode node;
  node.kind = WaitNode::Kind::Thread;
  node.thread_token = token;
  if (!linker.link(linker.object, node)) return true;
  // acquire: pairs with the waker's release store of `woken` (wake_list), which comes after a
  // counter drainer's note_error_kept.
  while (node.woken.load(std::memory_order_acquire) == 0) futex_wait(node.woken, 0);
  return node.error_kept != 0;
}

WaitEnd block_on_stoppable(void* primitive, const StoppableLinker& linker) {
  StoppableWait wait;
  wait.mutex = linker.mutex;
  if (!wait.begin(current_job_stop(), primitive, linker.unlink, linker.hand_over)) {
    throw_cancelled(linker.call);
  }
  block_on({linker.link, &wait, linker.what, primitive});  // the reports name the primitive
  return wait.end();
}

bool suspend_coroutine_on(WaitLinker linker, WaitNode& node, Scheduler* scheduler,
                          std::coroutine_handle<> coroutine) noexcept {
  Fiber* self = current_fiber();
  node.kind = WaitNode::Kind::Coroutine;
  node.coroutine_address = coroutine.address();
  node.scheduler = scheduler != nullptr ? scheduler : self != nullptr ? self->scheduler : nullptr;
  node.priority = static_cast<std::uint8_t>(self != nullptr ? self->priority : Priority::Normal);
  node.job_counter = self != nullptr ? self->job_counter : nullptr;
  node.job_stop = self != nullptr ? self->job_stop : nullptr;
  node.job_locals = self != nullptr ? self->job_locals : nullptr;
  node.next = nullptr;
  note_task_wait(node, linker.reported(), linker.what);  // before: see the end
  if (linker.link(linker.object, node)) return true;
  // When linked, the coroutine may already be running elsewhere: touch nothing of it.
  clear_task_wait(node);  // not linked: it goes on at once
  return false;
}

const void* waiter_token(const WaitNode& node) noexcept {
  switch (node.kind) {
    case WaitNode::Kind::Fiber:
      return node.fiber;
    case WaitNode::Kind::Coroutine:
      // The job that waits (its await_suspend assigned its lock owner before linking, under
      // the queue's lock that the hand-off holds too); a frame of no job is its own owner.
      if (node.job_locals != nullptr) {
        if (const std::uint64_t owner = job_root_of(node.job_locals)->lock_owner; owner != 0) {
          return as_token(owner);
        }
      }
      return node.coroutine_address;
    case WaitNode::Kind::Callback:
      return node.callback_context;
    case WaitNode::Kind::Thread:
    case WaitNode::Kind::Stoppable:  // a counter's node only, never a queue's
      break;
  }
  return node.thread_token;
}

const void* coroutine_owner_token(std::coroutine_handle<> coroutine) noexcept {
  const Fiber* self = current_fiber();
  if (self == nullptr || self->job_locals == nullptr) return coroutine.address();
  JobRoot* root = job_root_of(self->job_locals);
  if (root->lock_owner == 0) {
    root->lock_owner = g_next_lock_owner.fetch_add(2, std::memory_order_relaxed);  // see above
  }
  return as_token(root->lock_owner);
}

const void* current_job_owner_token() noexcept {
  const Fiber* self = current_fiber();
  if (self == nullptr || self->job_locals == nullptr) return nullptr;
  const std::uint64_t owner = job_root_of(self->job_locals)->lock_owner;
  return owner != 0 ? as_token(owner) : nullptr;
}

const void* current_token() noexcept {
  if (const Fiber* self = current_fiber()) return self;
  return &t_thread_token;
}

void note_plain_lock(int delta) noexcept {
  if (Fiber* self = current_fiber()) self->plain_locks += static_cast<std::uint32_t>(delta);
}

RunSegment current_segment() noexcept {
  if (const Fiber* self = current_fiber()) return {self, self->segment};
  return {};
}

void die_with(const char* message) noexcept {
  std::fputs(message, stderr);
  std::fputc('\n', stderr);
  std::fflush(stderr);
  std::abort();
}

}  // namespace fiberjob::detail
