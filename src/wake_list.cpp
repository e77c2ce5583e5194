// Making the waiters of a drained wait list runnable: the one-waiter fast path, the batch path,
// attached threads' own stacks, and foreign coroutines resumed from a trampoline.

#include <coroutine>

#include "counter_access.hpp"
#include "platform/futex.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace fiberjob::detail {

void wake_pinned(Fiber* fiber) noexcept {
  Worker* home = fiber->worker;
  // release: pairs with the acquire exchange in find_job, so the slot's thread resumes the
  // stack after the wait list's hand-over (the node was drained before this).
  home->native_ready.store(true, std::memory_order_release);
  // The slot's thread may be parked in the idle event count with the others: wake them all
  // (once per wait of an attached thread; the others look and park again).
  home->scheduler->notify_all_idle();
}

namespace {

/// wake_list's general case: any number of waiters of any kind. Out of line, so that its
/// 64-entry batch buffer and saved registers cost nothing to the one-waiter fast path (a join,
/// a ping-pong): inline, this frame's prologue would be most of a single wake's instructions,
/// and a ping-pong round trip makes two single wakes.
[[gnu::noinline]] void wake_list_batched(WaitNode* head, Worker* current) noexcept;

/// Foreign coroutines woken on this (non-worker) thread with no job system to resume them on,
/// first to last, linked through WaitNode::next (each node is the waker's from the drain on;
/// the coroutine does not read `next` once resumed). `draining`: a resume_foreign further up
/// this thread's stack is running them.
struct ForeignResumes {
  WaitNode* head = nullptr;
  WaitNode* tail = nullptr;
  bool draining = false;
};
thread_local ForeignResumes t_foreign_resumes;

/// Resumes the foreign coroutine of `node` on this thread, from a trampoline: a coroutine that
/// signals another counter while it runs (a chain of them) only queues the next one, which the
/// outermost call resumes after it returned. So the stack depth stays bounded however long the
/// chain, instead of one nested resume per link.
void resume_foreign(WaitNode* node) noexcept {
  ForeignResumes& queue = t_foreign_resumes;  // a plain thread: it never changes threads
  node->next = nullptr;
  if (queue.tail != nullptr) {
    queue.tail->next = node;
  } else {
    queue.head = node;
  }
  queue.tail = node;
  if (queue.draining) return;  // the outer call resumes it
  queue.draining = true;
  while (WaitNode* first = queue.head) {
    queue.head = first->next;
    if (queue.head == nullptr) queue.tail = nullptr;
    std::coroutine_handle<>::from_address(first->coroutine).resume();
  }
  queue.draining = false;
}

}  // namespace

void wake_list(WaitNode* head, Worker* current) noexcept {
  if (head == nullptr) return;
  // Fast path, the common wake of one fiber or coroutine job on our own system (a join, a
  // ping-pong): into our next slot (Worker::next).
  if (head->next == nullptr && current != nullptr) {
    if (head->kind == WaitNode::Kind::Fiber && head->fiber->pinned) {
      wake_pinned(head->fiber);
      return;
    }
    if (head->kind == WaitNode::Kind::Fiber && head->fiber->scheduler == current->scheduler) {
      Fiber* fiber = head->fiber;
      push_next(*current, Job::resume(fiber, fiber->priority));
      current->scheduler->notify_from_worker(
          1);  // a parked worker may take it after its spin phase
      return;
    }
    if (head->kind == WaitNode::Kind::Coroutine &&
        (head->scheduler == current->scheduler || head->scheduler == nullptr)) {
      push_next(*current, Job::resume_coroutine(head, static_cast<Priority>(head->priority)));
      current->scheduler->notify_from_worker(1);
      return;
    }
  }
  wake_list_batched(head, current);
}

namespace {

void wake_list_batched(WaitNode* head, Worker* current) noexcept {
  constexpr std::size_t kBatch = 64;
  std::uintptr_t batch[kBatch];  // Job::bits(); uninitialised (no 512-byte clear per wake)
  std::size_t batched = 0;
  Scheduler* batch_scheduler = nullptr;
  Priority batch_priority = Priority::Normal;
  int local = 0;
  auto flush = [&] {
    if (batched != 0) batch_scheduler->inject_bulk(batch, batched, batch_priority, current);
    batched = 0;
  };
  while (head != nullptr) {
    WaitNode* const next = head->next;  // before the waiter can run and reuse its node
    if (head->kind == WaitNode::Kind::Thread) {
      // release: pairs with the acquire load in CounterAccess::wait_on_thread. Last touch of
      // the node; the futex wake below only uses its address.
      head->woken.store(1, std::memory_order_release);
      futex_wake(head->woken, 1);
    } else if (head->kind == WaitNode::Kind::Callback) {
      head->callback(*head);  // e.g. posts a completion to an Asio executor
    } else {
      Job job;
      Scheduler* scheduler = nullptr;
      if (head->kind == WaitNode::Kind::Fiber) {
        Fiber* fiber = head->fiber;
        if (fiber->pinned) {  // an attached thread's stack: back to that thread only
          wake_pinned(fiber);
          head = next;
          continue;
        }
        job = Job::resume(fiber, fiber->priority);
        scheduler = fiber->scheduler;
      } else {
        job = Job::resume_coroutine(head, static_cast<Priority>(head->priority));
        scheduler = head->scheduler != nullptr ? head->scheduler
                    : current != nullptr       ? current->scheduler
                                               : nullptr;
        if (scheduler == nullptr) {
          // No job system known (a counter no system ever ran jobs on, signalled by a plain
          // thread): resume the foreign coroutine on this thread, through the trampoline.
          resume_foreign(head);
          head = next;
          continue;
        }
      }
      if (current != nullptr && current->scheduler == scheduler) {
        push_local(*current, job);
        ++local;
      } else {
        if (batched == kBatch || batch_scheduler != scheduler || batch_priority != job.priority()) {
          flush();
        }
        batch_scheduler = scheduler;
        batch_priority = job.priority();
        batch[batched++] = job.bits();
      }
    }
    head = next;
  }
  flush();
  if (local != 0) current->scheduler->notify_from_worker(local);
}

}  // namespace

}  // namespace fiberjob::detail
