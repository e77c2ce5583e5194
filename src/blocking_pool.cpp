// BlockingPool and the two ways a job waits for a blocking call (marl's blocking_call, over a
// bounded pool): the waiter reserves a thread, suspends, and its linker queues the call once
// the waiter has stopped running; a pool thread runs it, wakes the waiter, then uncounts it.

#include "blocking_pool.hpp"

#include <system_error>

#include "fiber_switch.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace fiberjob::detail {

void BlockingPool::reserve() {
  std::unique_lock lock(mutex_);
  ++queued_;
  if (idle_ < queued_ && threads_.size() < max_threads_) {
    try {
      threads_.emplace_back([this] { thread_main(); });
    } catch (...) {
      if (threads_.empty()) {  // nobody would ever run the call
        --queued_;
        throw;
      }  // else the threads that exist take it in turn
    }
  }
  pending_.fetch_add(1);  // seq_cst: see pending(); counted before the call can be queued
}

void BlockingPool::unreserve() noexcept {
  {
    std::lock_guard lock(mutex_);
    --queued_;
  }
  if (pending_.fetch_sub(1) == 1) blocking_calls_done(scheduler_);  // seq_cst: see pending()
}

bool BlockingPool::link(void* object, WaitNode& node) noexcept {
  BlockingCall& call = *static_cast<BlockingCall*>(object);
  BlockingPool& pool = *static_cast<BlockingPool*>(call.pool);
  call.node = &node;
  call.next = nullptr;
  {
    std::unique_lock lock(pool.mutex_);
    StopWake* const stop = call.stop.armed();
    if (stop != nullptr && !stop->commit(node)) {  // the job's stop came first: queue nothing
      lock.unlock();
      pool.unreserve();  // its last touch of `call` was the commit
      return false;
    }
    (pool.tail_ != nullptr ? pool.tail_->next : pool.head_) = &call;
    pool.tail_ = &call;
  }
  pool.ready_.notify_one();
  return true;
}

bool BlockingPool::unlink_queued(void* object, WaitNode& /*node*/) noexcept {
  BlockingCall& call = *static_cast<BlockingCall*>(object);
  BlockingPool& pool = *static_cast<BlockingPool*>(call.pool);
  std::lock_guard lock(pool.mutex_);
  BlockingCall* previous = nullptr;
  for (BlockingCall* at = pool.head_; at != nullptr; previous = at, at = at->next) {
    if (at != &call) continue;
    (previous != nullptr ? previous->next : pool.head_) = call.next;
    if (pool.tail_ == &call) pool.tail_ = previous;
    --pool.queued_;
    return true;
  }
  return false;  // a pool thread took it (it runs or ran): that thread wakes the waiter
}

void BlockingPool::wake_unqueued(void* object, WaitNode& node) noexcept {
  BlockingPool& pool = *static_cast<BlockingPool*>(static_cast<BlockingCall*>(object)->pool);
  node.next = nullptr;
  // The waiter disarms the stop callback (which waits for us to return) before it touches the
  // call, and a woken job keeps the workers (and so the pool) alive until it ran: `pool` stays
  // valid through the decrement, as after a call a pool thread ran.
  wake_chain(&node);
  if (pool.pending_.fetch_sub(1) == 1) blocking_calls_done(pool.scheduler_);  // seq_cst: pending()
}

void BlockingPool::thread_main() noexcept {
  std::unique_lock lock(mutex_);
  for (;;) {
    while (head_ == nullptr && !stopping_) {
      ++idle_;
      ready_.wait(lock);
      --idle_;
    }
    if (head_ == nullptr) return;  // stopping, and nothing left
    BlockingCall* call = head_;
    head_ = call->next;
    if (head_ == nullptr) tail_ = nullptr;
    --queued_;
    lock.unlock();
    call->run(*call);
    WaitNode* node = call->node;  // the call may be gone once its waiter runs
    wake_chain(node);
    // seq_cst: see pending(). The wake's queueing happens before a worker that reads 0.
    // This shutdown handshake is model-checked: tests/model/blocking_model.cpp.
    if (pending_.fetch_sub(1) == 1) blocking_calls_done(scheduler_);
    lock.lock();
  }
}

void BlockingPool::stop() noexcept {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    threads.swap(threads_);
  }
  ready_.notify_all();
  for (std::thread& thread : threads) thread.join();
}

void run_blocking(BlockingCall& call) {
  Fiber* self = current_fiber();
  if (self == nullptr) {  // a plain thread may block: run it here
    call.run(call);
    return;
  }
  BlockingPool& pool = self->scheduler->blocking();
  // A stop while the call is queued takes it off the queue (a no-op when already stopped:
  // the link's commit then fails).
  (void)call.stop.arm(self->job_stop, &BlockingPool::unlink_queued, &call,
                      &BlockingPool::wake_unqueued);
  pool.reserve();
  call.pool = &pool;
  try {
    block_on({&BlockingPool::link, &call, "a blocking call"});
  } catch (...) {  // no fiber to suspend into: nothing was queued
    call.stop.disarm();
    pool.unreserve();
    throw;
  }
  call.stop.disarm();  // first: waits for a stop callback still running elsewhere
}

bool suspend_blocking(Scheduler& scheduler, BlockingCall& call, WaitNode& node,
                      std::coroutine_handle<> coroutine) {
  BlockingPool& pool = scheduler.blocking();
  (void)call.stop.arm(current_job_stop(), &BlockingPool::unlink_queued, &call,
                      &BlockingPool::wake_unqueued);  // as run_blocking
  pool.reserve();
  call.pool = &pool;
  return suspend_coroutine_on({&BlockingPool::link, &call, "a blocking call"}, node, &scheduler,
                              coroutine);
}

}  // namespace fiberjob::detail
