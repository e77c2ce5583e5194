// Stops that wake suspended waits (fiberjob/detail/stop_wake.hpp): the stop callback's body,
// and the stoppable form of the plain code's counter wait. A job with a stop token waits for
// zero as a target-0 value waiter (counter_value_wait.cpp): that list is lockable, so the stop
// callback can take the node back; the lock-free Treiber list cannot give a node back before
// the drain. Jobs without a token keep the lock-free wait (one load and a compare more).
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
struct StopBlock : StopWake {
  /// The stoppable counter wait's value waiter (StopWait::arm with a null object).
  ValueWaiter waiter;
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

StopWake* StopWait::arm_block(const std::stop_token& stop,
                              bool (*unlink)(void* object, WaitNode& node) noexcept, void* object,
                              void (*hand_over)(void* object, WaitNode& node) noexcept) {
  StopBlock* block = take_block();
  StopWake& wake = *block;
  // A recycled block: its callback was reset (which waited for a running one), so nothing
  // else touches it. relaxed: published by the registration below (its lock).
  wake.state.store(StopWake::kIdle, std::memory_order_relaxed);
  wake.unlink = unlink;
  wake.hand_over = hand_over;
  wake.object = object != nullptr ? object : &block->waiter;
  wake.node = nullptr;
  wake.cancelled = false;
  block->waiter = ValueWaiter{};
  wake_ = block;
  block->callback.emplace(stop, StopWakeCall{&wake});  // runs the callback now if stopped
  return &wake;
}

bool StopWait::disarm_block() noexcept {
  StopBlock* block = static_cast<StopBlock*>(wake_);
  block->callback.reset();  // first: waits for a callback still running elsewhere
  const bool cancelled = block->cancelled;
  wake_ = nullptr;
  give_block(block);
  return cancelled;
}

ValueWaiter* StopWait::value_waiter() const noexcept {
  return wake_ != nullptr ? &static_cast<StopBlock*>(wake_)->waiter : nullptr;
}

void StopWake::on_stop() noexcept {
  // acq_rel: acquire pairs with the linker's commit (release), so `node` is the linked one
  // and the link under the primitive's lock happened before our unlink takes that lock;
  // release pairs with a failing commit's acquire (that linker links nothing).
  if (state.exchange(kStopped, std::memory_order_acq_rel) != kLinked) return;
  WaitNode* const waiter = node;
  if (!unlink(object, *waiter)) return;  // a signal, set or timer took it: that one wakes it
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

void wait_on_fiber_with_stop(Fiber* self, Counter& counter) {
  check_not_own_counter(self, counter);
  if (CounterWaitList::load_settled(counter) == 0) return;
  if (has_local_jobs(*self->worker)) {  // work-first, as wait_on_fiber
    run_own_children(self, counter);
    if (CounterWaitList::load_settled(counter) == 0) return;
  }
  StopWait stop;
  StopWake* const wake = stop.arm(self->job_stop, &unlink_value_wait, nullptr);
  ValueWaiter& waiter = *stop.value_waiter();  // armed: the caller saw stop_possible()
  waiter.counter = &counter;
  waiter.stop = wake;
  const WaitLinker linker{&link_value_wait, &waiter, "a Counter", &counter};
  if (!wait_on_fiber_linked(self, linker)) {
    // An attached thread with no fiber to run jobs on meanwhile: it parks on its own stack,
    // as the same value waiter, so the stop (still armed) wakes it too.
    park_own_stack(self, linker);
  }
  stop.disarm();  // first: waits for a callback still running elsewhere
}

bool link_stoppable_counter_wait(Counter& counter, WaitNode& node, CounterStopWait& wait) {
  StopWake* const wake = wait.stop.arm(node.job_stop, &unlink_value_wait, nullptr);
  ValueWaiter& waiter = *wait.stop.value_waiter();  // armed: the caller saw stop_possible()
  waiter.counter = &counter;
  waiter.target = 0;
  waiter.stop = wake;
  return CounterWaitList::link_value_waiter(&waiter, node);
}

}  // namespace fiberjob::detail
