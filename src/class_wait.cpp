// Stack classes at their limit: a job of a class whose fibers are all in use waits off the
// queues until one comes back (no worker spins for it), and a plain job may not suspend holding
// the last fiber its class may have (FiberPool::hold_while_suspended; decisions.md, "Stack
// classes").

#include <utility>

#include "fiber_pool.hpp"
#include "platform/fence.hpp"
#include "scheduler.hpp"

namespace fiberjob::detail {

void FiberPool::park_job(Job job, Worker* worker) noexcept {
  {
    const std::lock_guard<std::mutex> lock(parked_mutex_);
    parked_.push_back(job);
    // relaxed: ordered by the fence below (see parked_count_).
    parked_count_.store(parked_.size(), std::memory_order_relaxed);
  }
  // seq_cst fence: pairs with the one in release() (kept, then look for a free fiber). A fiber
  // that came back before the job was kept is seen here; one that comes back later sees the job.
  seq_cst_fence();
  if (may_have_free_fiber()) unpark_one(worker);
}

void FiberPool::unpark_one(Worker* worker) noexcept {
  Job job;
  {
    const std::lock_guard<std::mutex> lock(parked_mutex_);
    if (parked_.empty()) return;  // another release or park took it
    job = parked_.front();
    parked_.pop_front();
    // relaxed: see parked_count_.
    parked_count_.store(parked_.size(), std::memory_order_relaxed);
  }
  // To the injector, waking a worker: whoever gets it tries the pool again, and keeps it here
  // once more if another job took the fiber first (that job's end brings it back).
  scheduler_.inject(job, worker);
}

bool FiberPool::hold_while_suspended() noexcept {
  // relaxed: the RMWs on this one variable are totally ordered, so at most max_count_ - 1
  // holds succeed at once; nothing else is ordered by it.
  const std::uint32_t before = suspended_holders_.fetch_add(1, std::memory_order_relaxed);
  if (before + 1 < max_count_) return true;
  suspended_holders_.fetch_sub(1, std::memory_order_relaxed);  // relaxed: as above
  return false;
}

void FiberPool::end_hold() noexcept {
  suspended_holders_.fetch_sub(1, std::memory_order_relaxed);  // relaxed: see hold_while_suspended
}

}  // namespace fiberjob::detail
