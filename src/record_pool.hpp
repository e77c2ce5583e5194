#pragma once
// RecordPool: job records recycled through per-worker caches and a shared list, so that
// steady-state spawning never calls the global allocator.

#include <cstddef>
#include <mutex>
#include <vector>

#include "fiberjob/detail/job_record.hpp"

namespace fiberjob::detail {

/// A worker's private stack of free records (touched only by the worker's own thread).
struct RecordCache {
  JobRecord* head = nullptr;
  std::size_t count = 0;
};

/// The shared part. Records are allocated in blocks of kBlockRecords and never freed before
/// the pool dies; records move between worker caches through the shared list in batches of
/// kBatch, so the mutex is taken once per kBatch spawns at most (plain threads calling
/// `JobSystem::run` take it once per record).
class RecordPool {
 public:
  static constexpr std::size_t kBatch = 64;
  static constexpr std::size_t kCacheLimit = 2 * kBatch;
  static constexpr std::size_t kBlockRecords = 256;

  /// Pre-allocates enough records for `workers` full caches plus a reserve of in-flight jobs,
  /// so that the usual steady state never allocates, even while records drift from spawning
  /// workers to finishing ones.
  explicit RecordPool(std::size_t workers);
  ~RecordPool();
  RecordPool(const RecordPool&) = delete;
  RecordPool& operator=(const RecordPool&) = delete;

  /// A free record for a worker (from its cache, refilled in a batch when empty).
  JobRecord* acquire(RecordCache& cache);
  /// A free record for a plain thread.
  JobRecord* acquire_shared();
  /// Returns a record to a worker's cache; spills a batch to the shared list when it grows.
  void release(RecordCache& cache, JobRecord* record) noexcept;
  /// Returns a record to the shared list (from a plain thread).
  void release_shared(JobRecord* record) noexcept;
  /// Gives every cached record back to the shared list (worker shutdown).
  void drain(RecordCache& cache) noexcept;

 private:
  /// Moves up to `want` records from the shared list (allocating a block if it is empty) to
  /// `cache`. Caller holds mutex_.
  void refill_locked(RecordCache& cache, std::size_t want);

  std::mutex mutex_;
  JobRecord* shared_ = nullptr;     // guarded by mutex_
  std::vector<JobRecord*> blocks_;  // guarded by mutex_
};

}  // namespace fiberjob::detail
