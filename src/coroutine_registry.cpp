// The registry of live coroutine jobs (coroutine_registry.hpp): per-thread shards of intrusive
// lists of root promises, each under a spin lock held for a few pointer stores.

#include "fiberjob/detail/coroutine_registry.hpp"

#include <atomic>

#include "fiberjob/task.hpp"
#include "platform/futex.hpp"
#include "scheduler.hpp"

namespace fiberjob::detail {

CoroutineShard g_coroutine_jobs[kCoroutineShards];
std::atomic<int> g_tracking_systems{0};

namespace {

/// The shard of the calling thread: threads take shards round robin on first use.
std::uint32_t own_shard() noexcept {
  static std::atomic<std::uint32_t> next_shard{0};
  // relaxed: only spreads threads over shards, pairs with nothing.
  thread_local const std::uint32_t shard =
      next_shard.fetch_add(1, std::memory_order_relaxed) % kCoroutineShards;
  return shard;
}

void lock(CoroutineShard& shard) noexcept {
  // acquire: pairs with the release store in unlock(): the previous holder's links are seen.
  while (shard.locked.exchange(true, std::memory_order_acquire)) {
    while (shard.locked.load(std::memory_order_relaxed)) cpu_relax();  // relaxed: a hint
  }
}

void unlock(CoroutineShard& shard) noexcept {
  shard.locked.store(false, std::memory_order_release);  // release: pairs with lock()'s acquire
}

}  // namespace

void link_coroutine_job(Scheduler& scheduler, TaskPromiseBase& promise) noexcept {
  if (!scheduler.config().track_coroutine_jobs) return;
  const std::uint32_t index = own_shard();
  CoroutineShard& shard = g_coroutine_jobs[index];
  lock(shard);
  promise.job_links_ = CoroutineJobLinks{nullptr, shard.head, index};
  if (shard.head != nullptr) shard.head->job_links_.prev = &promise;
  shard.head = &promise;
  unlock(shard);
}

std::size_t live_coroutine_jobs(const Scheduler& scheduler) noexcept {
  std::size_t count = 0;
  for (CoroutineShard& shard : g_coroutine_jobs) {
    lock(shard);
    for (const TaskPromiseBase* p = shard.head; p != nullptr; p = p->job_links_.next) {
      if (p->job_scheduler_ == &scheduler) ++count;
    }
    unlock(shard);
  }
  return count;
}

void unlink_coroutine_job(TaskPromiseBase& promise) noexcept {
  CoroutineShard& shard = g_coroutine_jobs[promise.job_links_.shard];
  lock(shard);
  CoroutineJobLinks& links = promise.job_links_;
  if (links.prev != nullptr) {
    links.prev->job_links_.next = links.next;
  } else {
    shard.head = links.next;
  }
  if (links.next != nullptr) links.next->job_links_.prev = links.prev;
  unlock(shard);
  links = CoroutineJobLinks{nullptr, nullptr, kCoroutineShards};
}

}  // namespace fiberjob::detail
