// RecordPool: per-worker caches over a mutex-protected shared free list.

#include "record_pool.hpp"

#include <new>

namespace fiberjob::detail {

namespace {
constexpr std::size_t kInFlightReserve = 1024;  // records
constexpr std::size_t kMaxBlocks = 4096;        // bookkeeping reserved up front
}  // namespace

RecordPool::RecordPool(std::size_t workers) {
  blocks_.reserve(kMaxBlocks);
  const std::size_t records = workers * (kCacheLimit + kBatch) + kInFlightReserve;
  RecordCache all;
  std::lock_guard lock(mutex_);
  while (all.count < records) refill_locked(all, kBlockRecords);
  while (all.head != nullptr) {  // everything into the shared list
    JobRecord* record = all.head;
    all.head = record->next_free;
    record->next_free = shared_;
    shared_ = record;
  }
}

RecordPool::~RecordPool() {
  for (JobRecord* block : blocks_) {
    ::operator delete (block, std::align_val_t{alignof(JobRecord)});
  }
}

void RecordPool::refill_locked(RecordCache& cache, std::size_t want) {
  if (shared_ == nullptr) {
    auto* block = static_cast<JobRecord*>(
        ::operator new (sizeof(JobRecord) * kBlockRecords, std::align_val_t{alignof(JobRecord)}));
    blocks_.push_back(block);
    for (std::size_t i = 0; i < kBlockRecords; ++i) {
      JobRecord* record = ::new (static_cast<void*>(&block[i])) JobRecord();
      record->next_free = shared_;
      shared_ = record;
    }
  }
  for (std::size_t i = 0; i < want && shared_ != nullptr; ++i) {
    JobRecord* record = shared_;
    shared_ = record->next_free;
    record->next_free = cache.head;
    cache.head = record;
    ++cache.count;
  }
}

JobRecord* RecordPool::acquire(RecordCache& cache) {
  if (cache.head == nullptr) {
    std::lock_guard lock(mutex_);
    refill_locked(cache, kBatch);
  }
  JobRecord* record = cache.head;
  cache.head = record->next_free;
  --cache.count;
  return record;
}

JobRecord* RecordPool::acquire_shared() {
  RecordCache one;
  std::lock_guard lock(mutex_);
  refill_locked(one, 1);
  return one.head;
}

void RecordPool::release(RecordCache& cache, JobRecord* record) noexcept {
  record->next_free = cache.head;
  cache.head = record;
  if (++cache.count <= kCacheLimit) return;
  // Spill a batch: the records drift towards the workers that finish jobs, and back to the
  // workers that spawn them through the shared list.
  JobRecord* first = cache.head;
  JobRecord* last = first;
  for (std::size_t i = 1; i < kBatch; ++i) last = last->next_free;
  cache.head = last->next_free;
  cache.count -= kBatch;
  std::lock_guard lock(mutex_);
  last->next_free = shared_;
  shared_ = first;
}

void RecordPool::release_shared(JobRecord* record) noexcept {
  std::lock_guard lock(mutex_);
  record->next_free = shared_;
  shared_ = record;
}

void RecordPool::drain(RecordCache& cache) noexcept {
  std::lock_guard lock(mutex_);
  while (cache.head != nullptr) {
    JobRecord* record = cache.head;
    cache.head = record->next_free;
    record->next_free = shared_;
    shared_ = record;
  }
  cache.count = 0;
}

}  // namespace fiberjob::detail
