#pragma once
/// \file
/// The registry of live coroutine jobs and the downward links of their await chains, kept for
/// debuggers (scripts/gdb/fiberjob.py) and write_diagnostics. Internal: users never touch it.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>

#include "fiberjob/detail/cache_line.hpp"

namespace fiberjob::detail {

class TaskPromiseBase;
class Scheduler;

/// Where a root task (the coroutine of a coroutine job) sits in the registry: intrusive links
/// in its promise, so registering never allocates.
struct CoroutineJobLinks {
  TaskPromiseBase* prev = nullptr;
  TaskPromiseBase* next = nullptr;
  /// The shard the promise is linked into (kCoroutineShards = not linked).
  std::uint32_t shard = 0;
};

/// Shards of the registry: a thread links the jobs it starts into its own shard, so starting
/// jobs on several workers does not contend on one lock.
inline constexpr std::uint32_t kCoroutineShards = 16;

/// One shard: a doubly linked list of root promises under a spin lock held for a few pointer
/// stores only (never across a suspension). Each on its own cache line (kCacheLineBytes: 128
/// on aarch64), so that threads taking the locks of neighbouring shards do not share one.
struct alignas(kCacheLineBytes) CoroutineShard {
  /// true = a thread is inside the critical section. The acquire exchange that takes it
  /// (src/coroutine_registry.cpp, lock()) pairs with the release store that frees it
  /// (unlock()), so each holder sees the previous holder's links; the relaxed load in the
  /// spin is a hint that pairs with nothing.
  std::atomic<bool> locked{false};
  TaskPromiseBase* head = nullptr;
};

/// The registry. A plain global array so that a debugger finds it by name on a live process
/// or a core file: `fiberjob::detail::g_coroutine_jobs`.
extern CoroutineShard g_coroutine_jobs[kCoroutineShards];

/// Live job systems with Config::track_coroutine_jobs on (no job is linked while it is 0).
/// seq_cst increments and decrements (system start and end); the relaxed loads at a task's
/// start and end pair with nothing: a job started in a tracking system runs after that system's
/// increment, which its spawn orders.
extern std::atomic<int> g_tracking_systems;

/// Links the root task of a coroutine job of `scheduler` that is about to start into the
/// calling thread's shard, if `scheduler` has Config::track_coroutine_jobs on. Any thread;
/// never throws, never allocates.
void link_coroutine_job(Scheduler& scheduler, TaskPromiseBase& promise) noexcept;
/// The coroutine jobs of `scheduler` in the registry right now (started, not yet ended). Any
/// thread; takes each shard's lock in turn (a snapshot, not a consistent cut).
std::size_t live_coroutine_jobs(const Scheduler& scheduler) noexcept;
/// Most coroutine jobs whose await chains describe_coroutine_jobs prints.
inline constexpr std::size_t kDescribedCoroutineJobs = 256;
/// Prints the await chain of each coroutine job of `scheduler` in the registry (at most
/// kDescribedCoroutineJobs of them), innermost task first, for write_diagnostics. Any thread;
/// holds the walker lock and each shard's lock while copying the chains, never while printing.
/// Allocates (a copy of the chains, symbolizing); on failure prints fewer.
/// \return the number of coroutine jobs of `scheduler` in the registry.
std::size_t describe_coroutine_jobs(std::FILE* out, const Scheduler& scheduler) noexcept;
/// Unlinks a root task at its final suspend, before its frame is destroyed. Any thread.
void unlink_coroutine_job(TaskPromiseBase& promise) noexcept;

}  // namespace fiberjob::detail
