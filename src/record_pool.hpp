#pragma once
// RecordPool: job records recycled through per-worker caches and a shared list, so that
// steady-state spawning never calls the global allocator.

#include <cstddef>
#include <cstdint>
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
/// the pool dies; records move between caches through the shared list as whole chains of up to
/// kBatch records (a chain is taken or given in O(1), never walked under the mutex: a free
/// record was last written by another core, and walking 64 of them cost a cache miss each), so
/// the mutex is taken once per chain. The shared list is intrusive (each chain's first record
/// links the next chain), so giving records back (release, spill, drain: noexcept) never
/// allocates; only taking records may allocate a new block (and throw std::bad_alloc).
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

  /// A free record for a worker (from its cache, refilled in a batch when empty). Inline: it
  /// is on every spawn.
  JobRecord* acquire(RecordCache& cache) {
    if (cache.head == nullptr) [[unlikely]]
      refill(cache);
    JobRecord* record = cache.head;
    cache.head = record->free.next;
    --cache.count;
    return record;
  }
  /// A free record for a plain thread: from the thread's own cache of this pool's records,
  /// refilled a chain at a time under the mutex (one lock per chain of spawns, not one per
  /// spawn). The cache goes back to the pool when the thread exits or starts using
  /// another pool, if this pool still lives (a registry of live pools decides).
  JobRecord* acquire_shared();
  /// Returns a record to a worker's cache; spills a batch to the shared list when it grows.
  /// Inline: it is on every job's end.
  void release(RecordCache& cache, JobRecord* record) noexcept {
    record->free.next = cache.head;
    cache.head = record;
    if (++cache.count > kCacheLimit) [[unlikely]]
      spill(cache);
  }
  /// Returns a record to the shared list (from a plain thread).
  void release_shared(JobRecord* record) noexcept;
  /// Gives every cached record back to the shared list (worker shutdown).
  void drain(RecordCache& cache) noexcept;

 private:
  /// Makes the empty `cache` one chain of the shared list (allocating a block first if the
  /// list is empty). Caller holds mutex_.
  void refill_locked(RecordCache& cache);
  /// Puts [head .. tail] (`count` records, linked through free.next) on the shared list: onto
  /// the top chain if both fit in kBatch, else as a chain of its own. Never allocates. Caller
  /// holds mutex_.
  void push_locked(JobRecord* head, JobRecord* tail, std::size_t count) noexcept;
  /// Allocates one block of kBlockRecords records as chains of kBatch. Caller holds mutex_.
  void allocate_block_locked();
  /// Refills the empty `cache` with one chain of the shared list (takes the mutex).
  void refill(RecordCache& cache);
  /// Moves kBatch records of the over-full `cache` to the shared list (takes the mutex).
  void spill(RecordCache& cache) noexcept;

  /// Identifies this pool among all pools ever built (never reused, unlike addresses): a
  /// plain thread's record cache is given back only to the pool with its generation.
  std::uint64_t generation_;
  std::mutex mutex_;
  /// First record of the top chain of the shared list (free.next_chain links the others);
  /// nullptr = empty. Guarded by mutex_.
  JobRecord* chains_ = nullptr;
  std::vector<JobRecord*> blocks_;  // guarded by mutex_; grows only in allocate_block_locked
};

}  // namespace fiberjob::detail
