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
    std::lock_guard lock(pool.mutex_);
    (pool.tail_ != nullptr ? pool.tail_->next : pool.head_) = &call;
    pool.tail_ = &call;
  }
  pool.ready_.notify_one();
  return true;
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
  pool.reserve();
  call.pool = &pool;
  try {
    block_on({&BlockingPool::link, &call, "a blocking call"});
  } catch (...) {  // no fiber to suspend into: nothing was queued
    pool.unreserve();
    throw;
  }
}

bool suspend_blocking(Scheduler& scheduler, BlockingCall& call, WaitNode& node,
                      std::coroutine_handle<> coroutine) {
  BlockingPool& pool = scheduler.blocking();
  pool.reserve();
  call.pool = &pool;
  return suspend_coroutine_on({&BlockingPool::link, &call, "a blocking call"}, node, &scheduler,
                              coroutine);
}

}  // namespace fiberjob::detail
