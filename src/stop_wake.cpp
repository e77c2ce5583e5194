// Stops that wake suspended waits (fiberjob/detail/stop_wake.hpp): the stop callback's body,
// and the stoppable counter wait for zero of a job with a stop token, lock-free: the linker
// commits the wait's StopBlock, then pushes the block's own node onto the counter's Treiber
// list (the plain link, or a chunk's combined link); the drainer that meets that node and the
// stop callback each try one claim of the committed state, and the winner wakes the waiter. A
// node the stop claimed stays on the list as a tombstone: the drainer skips it. The block has
// two references, the list's and the wait's; the last one gives it back. Jobs without a token
// keep the plain wait (one load and a compare more). Design: docs/decisions.md ("A counter
// wait of a job with a stop token is lock-free"); model: `stoppable_wait` in
// tests/model/counter_model.cpp.
// The std::stop_callback of a wait lives out of line in a StopBlock, taken only for a job whose
// token can be stopped, so an awaiter holds one pointer for it: blocks are recycled through a
// per-thread cache (touched only by its thread) over a shared depot under a mutex (touched a
// batch at a time, when a cache runs dry or overflows: blocks drift from the threads that arm
// waits to the threads that resume them). The global allocator runs only while the pool grows.

#include "fiberjob/detail/stop_wake.hpp"

#include <cstddef>
#include <mutex>
#include <optional>

#include "counter_wait_list.hpp"
#include "fiber_switch.hpp"
#include "fiberjob/counter_wait.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace fiberjob::detail {

/// The out-of-line part of one armed StopWait: its wake (the base, which StopWait points to).
/// For a counter wait (StopWait::arm_counter; `unlink` == nullptr, `object` the Counter) also
/// the node the linker pushes onto the counter's list, and the block's references.
struct StopBlock : StopWake {
  /// arm_counter: the node on the counter's list (Kind::Stoppable, `callback_context` = this).
  WaitNode list_node;
  /// arm_counter: how many of the block's two holders still hold it: the counter's list
  /// (dropped by the drainer that meets `list_node`, take_stoppable, or by the linker when its
  /// commit failed and it linked nothing) and the wait (dropped by disarm_block, after the
  /// std::stop_callback is destroyed and the linker is done). The holder that drops the last
  /// gives the block back to its thread's cache. Other waits have only the wait's (not
  /// counted).
  std::atomic<std::uint32_t> refs{0};
  std::optional<std::stop_callback<StopWakeCall>> callback;  // reset before the wake is reused
  StopBlock* next_free = nullptr;                            // in a cache or the depot
};

namespace {

constexpr std::size_t kBatch = 16;               // blocks moved between a cache and the depot
constexpr std::size_t kCacheLimit = 2 * kBatch;  // a cache spills a batch past this
constexpr std::size_t kChunkBlocks = 64;         // blocks made by one allocation

/// One allocation of the pool's growth; never freed (the depot keeps it reachable).
struct StopBlockChunk {
  StopBlockChunk* next = nullptr;
  StopBlock blocks[kChunkBlocks];
};

/// The shared free blocks (a stack through next_free). Never destroyed: threads may give
/// blocks back after main returned; the blocks stay reachable from it.
///
/// The pool grows only when a thread finds its cache and the depot empty, that is when every
/// free block sits in another thread's cache (at most kCacheLimit each); it grows by a chunk of
/// kChunkBlocks. So with T threads waiting at most W stoppable waits at once it stops growing
/// at W + (T - 1) * kCacheLimit + kChunkBlocks blocks: one chunk for two workers and a few
/// dozen waits, as the allocation test checks.
struct StopBlockDepot {
  std::mutex mutex;
  StopBlock* head = nullptr;         // guarded by mutex
  StopBlockChunk* chunks = nullptr;  // guarded by mutex
  std::size_t made = 0;              // blocks in `chunks`; guarded by mutex
};
StopBlockDepot& depot() noexcept {
  static StopBlockDepot* const shared = new StopBlockDepot;
  return *shared;
}

/// A thread's free blocks; gives them to the depot when the thread exits.
struct StopBlockCache {
  StopBlock* head = nullptr;
  std::size_t count = 0;

  StopBlockCache() noexcept = default;
  StopBlockCache(const StopBlockCache&) = delete;
  StopBlockCache& operator=(const StopBlockCache&) = delete;
  ~StopBlockCache() { spill(count); }

  /// Moves up to `n` (>= 1) blocks from the depot into this cache, growing the pool by a
  /// chunk when the depot is empty. Errors: std::bad_alloc (nothing moved then).
  void refill(std::size_t n) {
    StopBlockDepot& shared = depot();
    const std::lock_guard lock(shared.mutex);
    if (shared.head == nullptr) {
      auto* chunk = new StopBlockChunk;
      chunk->next = shared.chunks;
      shared.chunks = chunk;
      shared.made += kChunkBlocks;
      for (StopBlock& block : chunk->blocks) {
        block.next_free = shared.head;
        shared.head = &block;
      }
    }
    for (; n > 0 && shared.head != nullptr; --n) {
      StopBlock* block = shared.head;
      shared.head = block->next_free;
      push(block);
    }
  }
  /// Moves `n` blocks (n <= count) from this cache to the depot.
  void spill(std::size_t n) noexcept {
    if (n == 0) return;
    StopBlockDepot& shared = depot();
    const std::lock_guard lock(shared.mutex);
    for (; n > 0; --n, --count) {
      StopBlock* block = head;
      head = block->next_free;
      block->next_free = shared.head;
      shared.head = block;
    }
  }
  void push(StopBlock* block) noexcept {
    block->next_free = head;
    head = block;
    ++count;
  }
};
thread_local StopBlockCache t_stop_blocks;

/// A free block: from the calling thread's cache, refilled from the depot (which grows when
/// empty). Errors: std::bad_alloc.
StopBlock* take_block() {
  StopBlockCache& cache = t_stop_blocks;
  if (cache.head == nullptr) cache.refill(kBatch);
  StopBlock* block = cache.head;
  cache.head = block->next_free;
  --cache.count;
  return block;
}

/// Back to the calling thread's cache (a batch to the depot when it overflows).
void give_block(StopBlock* block) noexcept {
  StopBlockCache& cache = t_stop_blocks;
  cache.push(block);
  if (cache.count > kCacheLimit) cache.spill(kBatch);
}

}  // namespace

std::size_t stop_blocks_made() noexcept {
  StopBlockDepot& shared = depot();
  const std::lock_guard lock(shared.mutex);
  return shared.made;
}

StopWake* StopWait::arm_block(const std::stop_token& stop,
                              bool (*unlink)(void* object, WaitNode& node) noexcept, void* object,
                              void (*hand_over)(void* object, WaitNode& node) noexcept) {
  StopBlock* block = take_block();
  StopWake& wake = *block;
  // A recycled block: its callback was reset (which waited for a running one), and its last
  // holder gave it back, so nothing else touches it. relaxed: published by the registration
  // below (its lock).
  wake.state.store(StopWake::kIdle, std::memory_order_relaxed);
  wake.unlink = unlink;
  wake.hand_over = hand_over;
  wake.object = object;
  wake.node = nullptr;
  wake.cancelled = false;
  wake_ = block;
  block->callback.emplace(stop, StopWakeCall{&wake});  // runs the callback now if stopped
  return &wake;
}

StopWake* StopWait::arm_counter(const std::stop_token& stop) {
  StopBlock* block = take_block();
  StopWake& wake = *block;
  // relaxed: as in arm_block; the linker's commit (release) and its push publish them further.
  wake.state.store(StopWake::kIdle, std::memory_order_relaxed);
  wake.unlink = nullptr;  // the lock-free counter form
  wake.hand_over = nullptr;
  wake.object = nullptr;  // the Counter, set by the linker
  wake.node = nullptr;
  wake.cancelled = false;
  WaitNode& node = block->list_node;
  node.kind = WaitNode::Kind::Stoppable;
  node.callback_context = block;
  node.next = nullptr;
  // relaxed: the block is this thread's alone until the link publishes it (the commit and
  // the push CAS, both release).
  node.linking.store(0, std::memory_order_relaxed);
  block->refs.store(2, std::memory_order_relaxed);  // relaxed: as above
  wake_ = block;
  block->callback.emplace(stop, StopWakeCall{&wake});  // runs the callback now if stopped
  return &wake;
}

bool StopWait::disarm_block() noexcept {
  StopBlock* block = static_cast<StopBlock*>(wake_);
  const bool counted = block->unlink == nullptr;  // arm_counter's block: two holders
  // The linker of the block's node may still be in its re-check (it touches the counter) and
  // then clears `linking`: wait for it before the wait returns (the counter may die then) and
  // before this holder's drop (the block may be reused then). Model: kNoDisarmLinkerWait.
  if (counted) CounterWaitList::wait_for_linker(block->list_node);
  block->callback.reset();  // first: waits for a callback still running elsewhere
  const bool cancelled = block->cancelled;
  wake_ = nullptr;
  // acq_rel: release orders this holder's uses of the block before the other holder's drop;
  // acquire (when last) pairs with that drop's release, so the block is reused only after
  // both holders are done with it (model: `stoppable_wait`, kOneReference).
  if (!counted || block->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) give_block(block);
  return cancelled;
}

void StopWake::on_stop() noexcept {
  // acq_rel: acquire pairs with the linker's commit (release), so `node` is the linked one
  // and the link under the primitive's lock happened before our unlink takes that lock;
  // release pairs with a failing commit's acquire (that linker links nothing).
  // The lock-free counter wait: this exchange is the stop's claim of a committed node, against
  // the drainer's CAS kLinked -> kWoken (take_stoppable); the one that finds kLinked wakes.
  if (state.exchange(kStopped, std::memory_order_acq_rel) != kLinked) return;
  WaitNode* const waiter = node;
  // A signal, set or timer took it: that one wakes it. The counter wait unlinks nothing: its
  // block's node stays on the list as a tombstone, which the drainer skips.
  if (unlink != nullptr && !unlink(object, *waiter)) return;
  // Ours: nobody else wakes it. The waiter cannot return before this callback has (it
  // destroys the std::stop_callback first), so `waiter` stays valid through the wake.
  cancelled = true;  // before the wake: the waiter reads it once woken
  if (hand_over != nullptr) {
    hand_over(object, *waiter);
    return;
  }
  // The waiter's system, read before the wake: after it the waiter may run (but not return).
  Scheduler* const scheduler = waiter->kind == WaitNode::Kind::Fiber ? waiter->fiber->scheduler
                               : waiter->kind == WaitNode::Kind::Coroutine ? waiter->scheduler
                                                                           : nullptr;
  waiter->next = nullptr;
  wake_list(waiter, current_worker());
  if (scheduler != nullptr) scheduler->check_stop_after_shutdown();  // a stop racing ~JobSystem
}

namespace {

/// The linker of a lock-free stoppable counter wait (WaitLinker: `object` is the StopBlock,
/// whose `object` is the counter): commits the block for `waiter` (the waiter's own node), then
/// links the block's node — held in a wake chain's combined link when a coroutine of a chunk
/// waits (`combining_signals`), else at once. False when the stop came first: nothing linked.
bool link_stoppable(void* object, WaitNode& waiter) noexcept {
  StopBlock& block = *static_cast<StopBlock*>(object);
  Counter& counter = *static_cast<Counter*>(block.object);
  WaitNode& node = block.list_node;
  // Where a chain this node heads goes (hand_over_chain): the waiter's system and priority.
  if (waiter.kind == WaitNode::Kind::Coroutine) {
    node.priority = waiter.priority;
    node.scheduler = waiter.scheduler;
  } else {
    const bool fiber = waiter.kind == WaitNode::Kind::Fiber && !waiter.fiber->pinned;
    node.priority = static_cast<std::uint8_t>(fiber ? waiter.fiber->priority : Priority::Normal);
    node.scheduler = fiber ? waiter.fiber->scheduler : nullptr;
  }
  // relaxed: published by the commit (release); a stop that wins right after it wakes the
  // waiter, whose disarm then waits for the release stores that clear it.
  node.linking.store(1, std::memory_order_relaxed);
  if (!block.commit(waiter)) {  // the stop came first (cancelled): link nothing
    node.linking.store(0, std::memory_order_release);  // release: pairs with wait_for_linker
    // acq_rel: as in disarm_block; never the last drop (the wait still holds the block).
    block.refs.fetch_sub(1, std::memory_order_acq_rel);
    return false;
  }
  Worker* const worker = current_worker();
  if (waiter.kind == WaitNode::Kind::Coroutine && worker != nullptr && worker->combining_signals) {
    defer_link(*worker, counter, node);  // linked with the chunk's other waits in one CAS
    return true;
  }
  CounterWaitList::link(counter, node, worker);
  return true;
}

}  // namespace

WaitNode* take_stoppable(WaitNode& node) noexcept {
  StopBlock* const block = static_cast<StopBlock*>(node.callback_context);
  std::uint32_t expected = StopWake::kLinked;
  WaitNode* waiter = nullptr;
  // acq_rel: the drainer's claim, against the stop's exchange (on_stop). acquire pairs with
  // the commit's release: `node` is the committed waiter (the push and the drain order it
  // too). release: a later exchange by the stop finds kWoken and touches nothing, so nothing
  // needs it; kept as the model checks it (model: `stoppable_wait`, kClaimRelaxed).
  if (block->state.compare_exchange_strong(expected, StopWake::kWoken, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
    waiter = block->node;
  }
  // The list's reference, dropped without waiting for the block's linker: the wait holds the
  // other until its disarm waited for that linker. acq_rel: as in disarm_block.
  if (block->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) give_block(block);
  return waiter;
}

bool wait_on_fiber_with_stop(Fiber* self, Counter& counter) {
  check_not_own_counter(self, counter);
  if (CounterWaitList::load_settled(counter) == 0) return true;
  if (has_local_jobs(*self->worker)) {  // work-first, as wait_on_fiber
    run_own_children(self, counter);
    if (CounterWaitList::load_settled(counter) == 0) return true;
  }
  StopWait stop;
  StopWake* const wake = stop.arm_counter(*self->job_stop);  // the caller saw stop_possible()
  wake->object = &counter;
  const WaitLinker linker{&link_stoppable, wake, "a Counter", &counter};
  bool suspended = false;
  try {
    suspended = wait_on_fiber_linked(self, linker);
  } catch (...) {  // no fiber to suspend into: the linker did not run
    // acq_rel: as in disarm_block. The list's reference, never taken: dropped as a failed
    // commit drops it (never the last; the StopWait's destructor drops the other).
    static_cast<StopBlock*>(wake)->refs.fetch_sub(1, std::memory_order_acq_rel);
    throw;
  }
  bool check_error = false;
  if (!suspended) {
    // An attached thread with no fiber to run jobs on meanwhile (the linker did not run): it
    // parks on its own stack, linked through the same block, so the stop wakes it too.
    // Nothing linked means the stop came first: the caller throws Cancelled.
    check_error = park_own_stack(self, linker);
  }
  stop.disarm();  // first: waits for the linker and for a callback still running elsewhere
  // The drain that claimed the wait (take_stoppable) flags the waiter's own node; a stop that
  // won it or came first leaves it 0, and the caller throws Cancelled.
  if (suspended) check_error = CounterWaitList::take_error_kept(self->node);
  return check_error;
}

bool link_stoppable_counter_wait(Counter& counter, WaitNode& node, CounterStopWait& wait) {
  StopWake* const wake = wait.stop.arm_counter(*node.job_stop);  // caller saw stop_possible()
  wake->object = &counter;
  return link_stoppable(wake, node);
}

}  // namespace fiberjob::detail
