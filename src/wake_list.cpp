// Making the waiters of a drained wait list runnable: the one-waiter fast path, a long list
// handed to the workers as a stealable chain, the batch path, attached threads' own stacks, and
// foreign coroutines resumed from a trampoline.

#include <coroutine>

#include "counter_wait_list.hpp"
#include "fiber_switch.hpp"
#include "platform/futex.hpp"
#include "sanitizer.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace fiberjob::detail {

void wake_pinned(Fiber* fiber) noexcept {
  Worker* home = fiber->worker;
  if (fiber != &home->native) {  // a pooled fiber running a thread-affine job: its inbox
    push_affine(*home, Job::resume(fiber, fiber->priority));
    return;
  }
  // relaxed: ordered before the woken thread's next step by the release store below.
  home->pinned_wakers.fetch_add(1, std::memory_order_relaxed);
  // release: pairs with the acquire exchange in find_job, so the slot's thread resumes the
  // stack after the wait list's hand-over (the node was drained before this).
  home->native_ready.store(true, std::memory_order_release);
  // The slot's thread may be parked in the idle event count with the others: wake them all
  // (once per wait of an attached thread; the others look and park again).
  home->scheduler->notify_all_idle();
  // release: pairs with the acquire load in Scheduler::shut_down; from here on this call no
  // longer touches `home` or its scheduler, which the woken thread may now destroy.
  home->pinned_wakers.fetch_sub(1, std::memory_order_release);
}

namespace {

/// wake_list's general case: any number of waiters of any kind. Out of line, so that its
/// 64-entry batch buffer and saved registers cost nothing to the one-waiter fast path (a join,
/// a ping-pong): inline, this frame's prologue would be most of a single wake's instructions,
/// and a ping-pong round trip makes two single wakes.
[[gnu::noinline]] void wake_list_batched(WaitNode* head, Worker* current) noexcept;

/// wake_list without tracing: the waiters of `head` made runnable.
void wake_list_now(WaitNode* head, Worker* current) noexcept;

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
    std::coroutine_handle<>::from_address(first->coroutine_address).resume();
  }
  queue.draining = false;
}

/// The job system a chain from `head` is handed to: the waking worker's, else the head waiter's
/// (nullptr: none known, the waker walks the list itself).
Scheduler* chain_scheduler(const WaitNode* head, const Worker* current) noexcept {
  if (current != nullptr) return current->scheduler;
  if (head->kind == WaitNode::Kind::Coroutine || head->kind == WaitNode::Kind::Stoppable) {
    return head->scheduler;  // a stoppable node carries its waiter's
  }
  if (head->kind == WaitNode::Kind::Fiber && !head->fiber->pinned) return head->fiber->scheduler;
  return nullptr;
}

/// A list of two or more waiters: instead of walking it here (one cache miss per node, on the
/// waker's critical path: the nodes live in the waiters' cold coroutine frames and fibers), it
/// goes to the workers whole, as one Job::ResumeChain; run_chain peels it a chunk at a time,
/// each chunk on the worker that then resumes its waiters (the walk warms the frames it is
/// about to run), the rest stealable. So the waker pays O(1), and the list's waiters spread
/// over the workers in chunks (docs/benchmarks.md §9). False when no job system is known.
bool hand_over_chain(WaitNode* head, Worker* current) noexcept {
  Scheduler* scheduler = chain_scheduler(head, current);
  if (scheduler == nullptr) return false;
  const Priority priority =
      head->kind == WaitNode::Kind::Coroutine || head->kind == WaitNode::Kind::Stoppable
          ? static_cast<Priority>(head->priority)
      : head->kind == WaitNode::Kind::Fiber ? head->fiber->priority
                                            : Priority::Normal;
  const Job chain = Job::resume_chain(head, priority);
  if (is_worker_of(current, *scheduler)) {
    push_local(*current, chain);
    scheduler->notify_from_worker(1);
  } else {
    scheduler->inject(chain, current);
  }
  return true;
}

/// Claims every stoppable wait on the list from `head` (take_stoppable), as the drain would
/// later: a node whose claim the drainer wins is replaced by its waiter's own node (the node
/// the waiter's resume keys its arrow's end by), a tombstone is cut out. Only while tracing:
/// the untraced drain claims them as it meets them, most in the chain off the waker's path.
/// \return the new head; nullptr when the list held tombstones only.
WaitNode* claim_stoppable_waits(WaitNode* head) noexcept {
  WaitNode** link = &head;  // the waker owns every node: none is runnable yet
  while (WaitNode* const node = *link) {
    if (node->kind != WaitNode::Kind::Stoppable) {
      link = &node->next;
      continue;
    }
    WaitNode* const next = node->next;  // before the claim: the block may be given back
    WaitNode* const waiter = take_stoppable(*node);
    if (waiter == nullptr) {  // a tombstone: the stop woke its waiter
      *link = next;
      continue;
    }
    waiter->next = next;  // the waiter's own node takes the block's place, as in wake_list_now
    *link = waiter;
    link = &waiter->next;
  }
  return head;
}

}  // namespace

WaitNode* CounterWaitList::note_error_kept(WaitNode* head) noexcept {
  // The stoppable waits first: the flag belongs in the node the waiter reads once woken (its
  // own), not in the pooled block the list holds. wake_list then meets no stoppable node.
  head = claim_stoppable_waits(head);
  for (WaitNode* node = head; node != nullptr; node = node->next) node->error_kept = 1;
  return head;
}

namespace {

/// wake_list with tracing on: a "wake" slice on the waker's track around the wake, and in it
/// the start of a flow arrow to each fiber and coroutine waiter's resume, keyed by its node
/// (trace.hpp, TraceKind::WakeFlow); a stoppable wait's arrow goes to its waiter when the
/// drainer wins the claim, none to a tombstone. Walks the list first, while the waker still
/// owns every node (none is runnable yet): O(waiters) and one event each, only while tracing.
[[gnu::noinline]] void wake_list_traced(WaitNode* head, Worker* current) noexcept {
  const std::uint64_t start = trace_now_ns();
  head = claim_stoppable_waits(head);
  if (head == nullptr) return;  // tombstones only: nobody to wake
  std::uint32_t waiters = 0;
  for (const WaitNode* node = head; node != nullptr; node = node->next, ++waiters) {
    if (node->kind == WaitNode::Kind::Coroutine ||
        (node->kind == WaitNode::Kind::Fiber && !node->fiber->pinned)) {
      current->trace.record(TraceKind::WakeFlow, start, reinterpret_cast<std::uintptr_t>(node), 0);
    }
  }
  wake_list_now(head, current);
  current->trace.record(TraceKind::Wake, start, trace_now_ns(), waiters);
}

}  // namespace

void wake_list(WaitNode* head, Worker* current) noexcept {
  if (head == nullptr) return;
  if (current != nullptr && current->scheduler->tracing()) [[unlikely]] {
    wake_list_traced(head, current);
    return;
  }
  wake_list_now(head, current);
}

namespace {

void wake_list_now(WaitNode* head, Worker* current) noexcept {
  // Stoppable waits at the head are claimed first, so that what follows sees a waiter's own
  // node: hand_over_chain reads the head's job system, and a tombstone's job system may be
  // gone (its waiter, woken by the stop, ended, and the counter outlived the JobSystem); of a
  // tombstone nothing but its pooled block is read. Later nodes are claimed as the chain runs.
  while (head->kind == WaitNode::Kind::Stoppable) [[unlikely]] {
      WaitNode* const next = head->next;  // before the claim: the block may be given back
      WaitNode* const waiter = take_stoppable(*head);
      if (waiter != nullptr) {
        waiter->next = next;  // the waiter's own node takes the block's place in the list
        head = waiter;
        break;
      }
      if (next == nullptr) return;  // tombstones only: the stops woke their waiters
      head = next;
    }
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
  if (head->next != nullptr && hand_over_chain(head, current)) return;
  wake_list_batched(head, current);
}

/// Sets `job` to the job that resumes `node` (a Fiber or Coroutine node) and returns the system
/// to queue it on; or resumes the waiter without a job and returns nullptr: an attached
/// thread's stack goes back to its own thread, and a coroutine with no job system known (a
/// counter no system ever ran jobs on, signalled by a plain thread) resumes on this thread,
/// through the trampoline.
Scheduler* job_to_resume(WaitNode* node, Worker* current, Job& job) noexcept {
  if (node->kind == WaitNode::Kind::Fiber) {
    Fiber* fiber = node->fiber;
    if (fiber->pinned) {  // an attached thread's stack: back to that thread only
      wake_pinned(fiber);
      return nullptr;
    }
    job = Job::resume(fiber, fiber->priority);
    return fiber->scheduler;
  }
  job = Job::resume_coroutine(node, static_cast<Priority>(node->priority));
  Scheduler* scheduler = node->scheduler != nullptr ? node->scheduler
                         : current != nullptr       ? current->scheduler
                                                    : nullptr;
  if (scheduler == nullptr) resume_foreign(node);
  return scheduler;
}

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
    WaitNode* const next = head->next;              // before the waiter can run and reuse its node
    if (head->kind == WaitNode::Kind::Stoppable) {  // claim it: wake its waiter, or skip it
      head = take_stoppable(*head);                 // (after `next`: the block may be reused)
      if (head == nullptr) {
        head = next;
        continue;
      }
    }
    if (head->kind == WaitNode::Kind::Thread) {
      // release: pairs with the acquire load in CounterWaitList::wait_on_thread. Last touch of
      // the node; the futex wake below only uses its address.
      head->woken.store(1, std::memory_order_release);
      futex_wake(head->woken, 1);
    } else if (head->kind == WaitNode::Kind::Callback) {
      head->callback(*head);  // e.g. posts a completion to an Asio executor
    } else {
      Job job;
      Scheduler* const scheduler = job_to_resume(head, current, job);
      if (scheduler == nullptr) {
        // job_to_resume resumed the waiter itself: nothing to queue.
      } else if (is_worker_of(current, *scheduler)) {
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

namespace {

/// run_chain's chunk: at most this many waiters are peeled off a chain before the rest is
/// queued again (stealable). Bigger chunks pay the queue round trip and a steal less often;
/// smaller ones let an idle worker join sooner.
constexpr int kChainChunk = 32;

/// Makes one waiter of a chain runnable on `self`'s worker: a coroutine of this job system at
/// the chain's priority resumes inline (no queue); anything else goes where wake_list_batched
/// would send it. Inlined into its three callers: a call per waiter cost about 20
/// instructions per agent step of row 9a (callgrind).
FIBERJOB_ALWAYS_INLINE void wake_chained(Fiber* self, WaitNode* node,
                                         Priority chain_priority) noexcept {
  if (node->kind == WaitNode::Kind::Stoppable) [[unlikely]] {  // the caller read `next` already
    node = take_stoppable(*node);
    if (node == nullptr) return;  // a tombstone: the stop woke its waiter
  }
  Worker* worker = self->worker;
  Scheduler* const own = worker->scheduler;
  if (node->kind == WaitNode::Kind::Coroutine) {
    const auto priority = static_cast<Priority>(node->priority);
    Scheduler* scheduler = node->scheduler != nullptr ? node->scheduler : own;
    const Job job = Job::resume_coroutine(node, priority);
    if (scheduler == own && priority == chain_priority) {
      worker->combining_signals = true;
      resume_coroutine(self, job);
      self->worker->combining_signals = false;  // re-read: the coroutine may have moved us
    } else if (scheduler == own) {
      push_local(*worker, job);
      own->notify_from_worker(1);
    } else {
      scheduler->inject(job, worker);
    }
    return;
  }
  if (node->kind == WaitNode::Kind::Fiber && !node->fiber->pinned) {
    Fiber* fiber = node->fiber;
    const Job job = Job::resume(fiber, fiber->priority);
    if (fiber->scheduler == own) {
      push_local(*worker, job);
      own->notify_from_worker(1);
    } else {
      fiber->scheduler->inject(job, worker);
    }
    return;
  }
  node->next = nullptr;             // this node alone (the chunk goes on from held_chain)
  wake_list_batched(node, worker);  // a thread, a callback, an attached thread's stack
}

/// run_chain's chunk on a worker alone in its system: nobody could take a waiter from it, so
/// it is held privately (Fiber::held_chain), with no atomic operation per waiter. Re-read
/// each time: if a waiter suspends this fiber, suspend() queues what is left of the chunk, and
/// held_chain is nullptr when the fiber comes back.
void run_chunk_alone(Fiber* self, WaitNode* first, Priority priority) noexcept {
  self->held_chain = first;
  self->held_chain_priority = priority;
  while (WaitNode* node = self->held_chain) {
    self->held_chain = node->next;  // before the waiter can run and reuse its node
    wake_chained(self, node, priority);
  }
  flush_deferred_signals(*self->worker);
}

/// run_chain's chunk when other workers may take part of it: through the worker's chunk slot,
/// one waiter at a time, so an idle worker can take the rest whatever the current step does
/// (Worker::chunk). That costs an atomic exchange per waiter: work stealing needs a
/// read-modify-write or a fence on the owner's side (Attiya et al., "Laws of Order", POPL
/// 2011), the price of never holding a waiter behind a step that blocks its worker.
/// `woke_one`: run_chain already woke a parked worker (for the rest of the chain).
void run_chunk_stealable(Fiber* self, WaitNode* first, Priority priority, bool woke_one) noexcept {
  Worker* worker = self->worker;
  // relaxed: only this thread fills the slot, so a 0 here is current.
  if (worker->is_slot || worker->chunk.load(std::memory_order_relaxed) != 0) {
    // An attached thread's slot (no thread may look at it later) or a chunk already held (left
    // by a fiber that suspended mid-chunk): one waiter now, the rest back on the deque.
    if (first->next != nullptr) {
      push_local(*worker, Job::resume_chain(first->next, priority));
      worker->scheduler->notify_from_worker(1);
    }
    first->next = nullptr;
    wake_chained(self, first, priority);
    flush_deferred_signals(*self->worker);
    return;
  }
  // Read before the chunk is published: from the store on, a thief may take it and rewrite
  // the nodes' links.
  const bool more = first->next != nullptr;
  // release: pairs with the acquire exchange below, in take_chunk and in steal_next: the
  // nodes' links (and run_chain's cut of the chunk) are visible to whoever takes it.
  worker->chunk.store(Job::resume_chain(first, priority).bits(), std::memory_order_release);
  // A parked worker would never look at the slot: wake one, unless run_chain already did for
  // the rest of the chain. An awake worker does not park while a slot holds a chunk
  // (has_visible_work); it takes the chunk after its spin phase if we are still busy (a waiter
  // blocked its thread, or long steps). One wake per chunk, not two: a futex wake per chunk on
  // the owner's path cost more than the steps themselves in row 9b.
  if (!woke_one && more) worker->scheduler->notify_from_worker(1);
  for (;;) {
    worker = self->worker;  // re-read: a waiter that suspended this fiber may have moved it
    // acquire: pairs with the release stores of the slot (here, above, or by another fiber of
    // this worker).
    const Job held = Job::from_bits(worker->chunk.exchange(0, std::memory_order_acquire));
    if (!held) break;  // done, or a thief took the rest
    WaitNode* const node = held.node();
    if (node->next != nullptr) {
      // release: as the store above.
      worker->chunk.store(Job::resume_chain(node->next, held.priority()).bits(),
                          std::memory_order_release);
    }
    wake_chained(self, node, held.priority());
  }
  flush_deferred_signals(*self->worker);
}

}  // namespace

void run_chain(Fiber* self, Job job) noexcept {
  WaitNode* const first = job.node();
  const Priority priority = job.priority();
  // Peel a chunk: the walk's misses fall on nodes this worker runs next, and each coroutine's
  // frame is prefetched on the way. Only `next` is read before a node is made runnable.
  WaitNode* last = first;
  for (int peeled = 1; peeled < kChainChunk && last->next != nullptr; ++peeled) {
    last = last->next;
    if (last->kind == WaitNode::Kind::Coroutine) __builtin_prefetch(last->coroutine_address);
  }
  bool woke_one = false;
  if (WaitNode* rest = last->next) {
    last->next = nullptr;  // the chunk ends here; the nodes are ours until made runnable
    // The rest goes back first, so another worker may take it while we run the chunk.
    push_local(*self->worker, Job::resume_chain(rest, priority));
    self->worker->scheduler->notify_from_worker(1);
    woke_one = true;
  }
  if (!self->worker->scheduler->several_workers()) {
    run_chunk_alone(self, first, priority);
  } else {
    run_chunk_stealable(self, first, priority, woke_one);
  }
}

void release_held_chain(Fiber* self) noexcept {
  if (self->held_chain == nullptr) return;
  push_local(*self->worker, Job::resume_chain(self->held_chain, self->held_chain_priority));
  self->worker->scheduler->notify_from_worker(1);
  self->held_chain = nullptr;
}

}  // namespace fiberjob::detail
