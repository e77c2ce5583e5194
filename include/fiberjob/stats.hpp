#pragma once
/// \file
/// `Stats`: counters a `JobSystem` keeps about its own work.

#include <cstdint>

namespace fiberjob {

/// A snapshot of a job system's counters since construction (each figure read with relaxed
/// loads, so the set is not one atomic instant). Returned by `JobSystem::stats()`.
struct Stats {
  std::uint64_t jobs_run = 0;        ///< `Job::Run` entries executed (jobs started).
  std::uint64_t steals = 0;          ///< Jobs taken from another worker's deque.
  std::uint64_t fiber_switches = 0;  ///< Fiber-to-fiber context switches (suspends + resumes).
  std::uint64_t parks = 0;           ///< Times a worker went to sleep for lack of work.
  /// Nanoseconds that workers (and attached threads looking for work) spent asleep in those
  /// parks, summed over all of them (steady clock; a park still in progress is not counted
  /// yet). Divided by the wall time and the worker count: the idle share of the workers.
  /// Spinning before a park and IdlePolicy::Spin count as busy.
  std::uint64_t parked_ns = 0;
  /// Waits and yields that took a fiber past the `Config::fiber_count` warm ones (the pool
  /// grew, or reused a fiber whose stack pages it had given back). Non-zero means
  /// `Config::fiber_count` is below the workload's peak of suspended plain jobs: correct, but
  /// slower than warm fibers.
  std::uint64_t pool_exhausted = 0;
  /// Coroutine jobs started and not yet at their final suspend: running, queued to resume, or
  /// suspended on a counter or a foreign awaitable (a suspended coroutine job holds no fiber,
  /// so `fibers_in_use` does not show it).
  std::uint64_t coroutine_jobs_alive = 0;
  /// Fibers the pool holds: `Config::fiber_count` (rounded up to a chunk of 64) made up front,
  /// more grown on demand, never more than `Config::max_fiber_count`. Never shrinks (the pages
  /// of fibers past `fiber_count` go back to the OS while they are unused).
  std::uint32_t fibers_created = 0;
  std::uint32_t fibers_in_use = 0;             ///< Fibers (of every stack class) in use now.
  std::uint32_t fibers_in_use_high_water = 0;  ///< Maximum of `fibers_in_use` so far.
};

}  // namespace fiberjob
