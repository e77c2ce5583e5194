// The registry of live coroutine jobs (coroutine_registry.hpp): per-thread shards of intrusive
// lists of root promises, each under a spin lock held for a few pointer stores.

#include "fiberjob/detail/coroutine_registry.hpp"

#include <atomic>
#include <cstdio>
#include <new>
#include <vector>

#include "await_chain_access.hpp"
#include "fiberjob/await_chain.hpp"
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

namespace {

/// The await chain of a registered root task, innermost first, read downward through the
/// awaiting_ links (the innermost kMaxFrames kept). Walker lock and the root's shard lock held.
AwaitChain chain_from_root(const TaskPromiseBase& root) noexcept {
  const TaskPromiseBase* tasks[AwaitChain::kMaxFrames];  // a ring: the innermost ones stay
  std::size_t count = 0;
  for (const TaskPromiseBase* t = &root; t != nullptr; t = AwaitChainAccess::awaiting(*t)) {
    tasks[count++ % AwaitChain::kMaxFrames] = t;
  }
  AwaitChain chain;
  chain.truncated = count > AwaitChain::kMaxFrames;
  chain.size = chain.truncated ? AwaitChain::kMaxFrames : count;
  const void* at = nullptr;  // the innermost task's suspension point is not recorded
  for (std::size_t i = 0; i < chain.size; ++i) {
    const TaskPromiseBase& task = *tasks[(count - 1 - i) % AwaitChain::kMaxFrames];
    chain.frames[i] = AwaitFrame{AwaitChainAccess::code(task), at};
    at = AwaitChainAccess::awaited_at(task);
  }
  return chain;
}

}  // namespace

namespace {

/// What describe_coroutine_jobs copies of one job under the locks.
struct DescribedJob {
  AwaitChain chain;
  const char* name = nullptr;      ///< JobOptions::name
  const void* waits_on = nullptr;  ///< JobRoot::waits_on (never dereferenced)
  const char* what = nullptr;      ///< JobRoot::waits_on_what
};

DescribedJob describe_root(const TaskPromiseBase& root) noexcept {
  const JobRoot& job = AwaitChainAccess::job_root(root);
  // relaxed: a diagnostic snapshot (JobRoot::waits_on), pairs with nothing.
  return DescribedJob{chain_from_root(root), job.name, job.waits_on.load(std::memory_order_relaxed),
                      job.waits_on_what.load(std::memory_order_relaxed)};
}

void print_described_job(std::FILE* out, std::size_t number, const DescribedJob& job) noexcept {
  std::fprintf(out, "  coroutine job %zu%s%s%s: ", number, job.name != nullptr ? " '" : "",
               job.name != nullptr ? job.name : "", job.name != nullptr ? "'" : "");
  if (job.waits_on != nullptr) {
    std::fprintf(out, "waits on %s %p", job.what != nullptr ? job.what : "?", job.waits_on);
  } else {
    std::fputs(
        "in no wait of fiberjob (running, queued to resume, or suspended on another "
        "awaitable)",
        out);
  }
  std::fputs("; await chain (innermost first):\n", out);
  print_await_chain(out, job.chain);
}

}  // namespace

std::size_t describe_coroutine_jobs(std::FILE* out, const Scheduler& scheduler) noexcept {
  std::vector<DescribedJob> jobs;
  std::size_t count = 0;
  lock_await_chain_walkers();
  for (CoroutineShard& shard : g_coroutine_jobs) {
    lock(shard);
    for (const TaskPromiseBase* p = shard.head; p != nullptr; p = p->job_links_.next) {
      if (p->job_scheduler_ != &scheduler) continue;
      ++count;
      try {
        if (jobs.size() < kDescribedCoroutineJobs) jobs.push_back(describe_root(*p));
      } catch (const std::bad_alloc&) {  // counted, not listed
      }
    }
    unlock(shard);
  }
  unlock_await_chain_walkers();
  // Printed after the locks are released: symbolizing reads files.
  for (std::size_t i = 0; i < jobs.size(); ++i) print_described_job(out, i + 1, jobs[i]);
  if (count > jobs.size()) {
    std::fprintf(out, "  (%zu more coroutine jobs not shown)\n", count - jobs.size());
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
