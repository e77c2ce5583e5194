// RecordPool: per-worker caches over a mutex-protected shared free list.

#include "record_pool.hpp"

#include <algorithm>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

namespace fiberjob::detail {

namespace {
constexpr std::size_t kInFlightReserve = 1024;  // records

/// The pools alive now, so that a plain thread's cache of records is given back only to a pool
/// that still exists. Guarded by its mutex; touched at pool construction and destruction, when
/// a thread's cache changes pools, and at thread exit.
struct LivePools {
  std::mutex mutex;
  std::vector<std::pair<RecordPool*, std::uint64_t>> pools;
  std::uint64_t next_generation = 1;
};
LivePools& live_pools() {
  static LivePools* pools = new LivePools;  // never destroyed: threads may exit after main
  return *pools;
}

/// A plain thread's records of one pool (see RecordPool::acquire_shared).
struct ForeignCache {
  RecordPool* pool = nullptr;
  std::uint64_t generation = 0;
  RecordCache cache;
  /// Gives the records back if their pool still lives (else they died with it).
  void give_back() noexcept {
    if (cache.head != nullptr) {
      LivePools& live = live_pools();
      std::lock_guard lock(live.mutex);
      for (const auto& [pool_alive, generation_alive] : live.pools) {
        if (pool_alive == pool && generation_alive == generation) {
          pool->drain(cache);
          break;
        }
      }
    }
    cache = RecordCache{};
    pool = nullptr;
  }
  ~ForeignCache() { give_back(); }
};
thread_local ForeignCache t_foreign;

}  // namespace

RecordPool::RecordPool(std::size_t workers) {
  {
    LivePools& live = live_pools();
    std::lock_guard lock(live.mutex);
    generation_ = live.next_generation++;
    live.pools.emplace_back(this, generation_);
  }
  const std::size_t records = workers * (kCacheLimit + kBatch) + kInFlightReserve;
  std::lock_guard lock(mutex_);
  while (blocks_.size() * kBlockRecords < records) allocate_block_locked();
}

RecordPool::~RecordPool() {
  {
    LivePools& live = live_pools();
    std::lock_guard lock(live.mutex);
    std::erase(live.pools, std::pair<RecordPool*, std::uint64_t>(this, generation_));
  }
  for (JobRecord* block : blocks_) {
    ::operator delete (block, std::align_val_t{alignof(JobRecord)});
  }
}

void RecordPool::allocate_block_locked() {
  blocks_.push_back(nullptr);  // first: if it throws, nothing is allocated yet
  JobRecord* block = nullptr;
  try {
    block = static_cast<JobRecord*>(
        ::operator new (sizeof(JobRecord) * kBlockRecords, std::align_val_t{alignof(JobRecord)}));
  } catch (...) {
    blocks_.pop_back();
    throw;
  }
  blocks_.back() = block;
  for (std::size_t first = 0; first < kBlockRecords; first += kBatch) {
    for (std::size_t i = first; i < first + kBatch; ++i) {
      JobRecord* record = ::new (static_cast<void*>(&block[i])) JobRecord();
      record->free.next = i + 1 < first + kBatch ? &block[i + 1] : nullptr;
    }
    push_locked(&block[first], &block[first + kBatch - 1], kBatch);
  }
}

void RecordPool::push_locked(JobRecord* head, JobRecord* tail, std::size_t count) noexcept {
  JobRecord* top = chains_;
  if (top != nullptr && top->free.count + count <= kBatch) {
    // Onto the top chain: [head .. tail] then the top chain's records; head leads it now.
    tail->free.next = top;
    head->free.next_chain = top->free.next_chain;
    head->free.count = top->free.count + count;
  } else {
    tail->free.next = nullptr;
    head->free.next_chain = top;
    head->free.count = count;
  }
  chains_ = head;
}

void RecordPool::refill_locked(RecordCache& cache) {
  if (chains_ == nullptr) allocate_block_locked();
  JobRecord* chain = chains_;
  chains_ = chain->free.next_chain;
  cache.head = chain;
  cache.count = chain->free.count;
}

void RecordPool::refill(RecordCache& cache) {
  std::lock_guard lock(mutex_);
  refill_locked(cache);
}

JobRecord* RecordPool::acquire_shared() {
  ForeignCache& mine = t_foreign;  // read once: no suspension in this function
  if (mine.pool != this || mine.generation != generation_) {
    mine.give_back();  // records of another pool (or of a dead one)
    mine.pool = this;
    mine.generation = generation_;
  }
  return acquire(mine.cache);
}

void RecordPool::spill(RecordCache& cache) noexcept {
  // The records drift towards the workers that finish jobs, and back to the workers (and plain
  // threads) that spawn them through the shared list. The walk is over records this worker
  // just released (warm in its cache), outside the mutex.
  JobRecord* first = cache.head;
  JobRecord* last = first;
  for (std::size_t i = 1; i < kBatch; ++i) last = last->free.next;
  cache.head = last->free.next;
  cache.count -= kBatch;
  std::lock_guard lock(mutex_);
  push_locked(first, last, kBatch);
}

void RecordPool::release_shared(JobRecord* record) noexcept {
  std::lock_guard lock(mutex_);
  push_locked(record, record, 1);
}

void RecordPool::drain(RecordCache& cache) noexcept {
  if (cache.head == nullptr) return;
  JobRecord* last = cache.head;
  std::size_t count = 1;
  while (last->free.next != nullptr) {
    last = last->free.next;
    ++count;
  }
  std::lock_guard lock(mutex_);
  push_locked(cache.head, last, count);
  cache.head = nullptr;
  cache.count = 0;
}

}  // namespace fiberjob::detail
