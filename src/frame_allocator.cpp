// FrameAllocator: per-worker bump arenas in a ring of frame slots, all in one block.
//
// Layout of the block (every arena starts on a cache line, its stride rounded up to
// kCacheLineBytes, fiberjob/detail/cache_line.hpp):
//
//   slot 0: [worker 0][worker 1]...[worker n-1][shared] slot 1: [worker 0]... slot frames-1: ...
//
// Ordering: a worker arena's `used_bytes` has one writer at a time — the worker, or
// begin_frame when it resets the slot. The user's contract (begin_frame only after the jobs of
// the recycled frame are done, e.g. after a counter wait) orders the worker's last bump before
// the reset; the release store of `current_row_` orders the reset before every bump of the new
// frame (their acquire load of `current_row_`). The same two edges order the debug fill and
// the ASan poisoning against the memory's users.

#include "fiberjob/frame_allocator.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#include "fiberjob/context.hpp"
#include "fiberjob/detail/cache_line.hpp"
#include "fiberjob/error.hpp"
#include "fiberjob/job_system.hpp"
#include "sanitizer.hpp"

#if defined(FIBERJOB_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace fiberjob {
namespace detail {

/// One arena of one frame slot. `base` and `capacity_bytes` are fixed at construction.
struct alignas(kCacheLineBytes) FrameArena {
  std::byte* base = nullptr;
  /// The budget (FrameAllocatorConfig::bytes_per_worker or shared_bytes).
  std::size_t capacity_bytes = 0;
  /// Bytes of the arena this span of memory covers (capacity rounded up to a cache line).
  std::size_t stride_bytes = 0;
  /// Bytes handed out in this slot's current frame, padding included; in [0, capacity_bytes].
  /// Worker arena: bumped by its worker (relaxed load + store: single writer), reset to 0 by
  /// begin_frame. Shared arena: bumped by a CAS from any thread, reset by begin_frame.
  std::atomic<std::size_t> used_bytes{0};
};

}  // namespace detail

namespace {

using detail::kCacheLineBytes;
constexpr std::size_t kMaxSize = std::numeric_limits<std::size_t>::max();
/// Byte written over a frame's memory when its slot is reset (debug builds).
[[maybe_unused]] constexpr unsigned char kFreedByte = 0xDD;

#if defined(FIBERJOB_ASAN)
/// ASan keeps one shadow byte per 8 bytes, which records an addressable prefix. Two threads
/// unpoisoning neighbouring allocations inside one 8-byte granule would race on that shadow
/// byte, so shared-arena allocations are whole granules under ASan.
constexpr std::size_t kSharedGranuleBytes = 8;
#else
constexpr std::size_t kSharedGranuleBytes = 1;
#endif

[[noreturn]] void reject(const std::string& message) {
  throw Error(ErrorCode::InvalidConfig, "fiberjob: invalid FrameAllocatorConfig: " + message);
}

/// `bytes` rounded up to a cache line; throws naming `field` on overflow.
std::size_t stride_of(std::size_t bytes, const char* field) {
  if (bytes > kMaxSize - (kCacheLineBytes - 1)) {
    reject(std::string("FrameAllocatorConfig::") + field + " = " + std::to_string(bytes) +
           " bytes is too large");
  }
  return (bytes + kCacheLineBytes - 1) / kCacheLineBytes * kCacheLineBytes;
}

/// a * b; throws naming `field` on overflow.
std::size_t checked_mul(std::size_t a, std::size_t b, const char* field) {
  if (a != 0 && b > kMaxSize / a) {
    reject(std::string("FrameAllocatorConfig::") + field +
           " is too large: the total size of all arenas overflows");
  }
  return a * b;
}

/// Padding that aligns `base + used` to `alignment` (a power of two).
std::size_t padding_for(const std::byte* base, std::size_t used, std::size_t alignment) noexcept {
  const auto at = reinterpret_cast<std::uintptr_t>(base) + used;
  return (alignment - (at & (alignment - 1))) & (alignment - 1);
}

/// Whether `pad + bytes` more fit after `used` (no overflow: used <= capacity).
bool fits(const detail::FrameArena& arena, std::size_t used, std::size_t pad,
          std::size_t bytes) noexcept {
  const std::size_t left = arena.capacity_bytes - used;
  return pad <= left && bytes <= left - pad;
}

/// Bump on the calling worker's own arena: single writer, so a plain load and store.
void* bump_worker(detail::FrameArena& arena, std::size_t bytes, std::size_t alignment) noexcept {
  // relaxed: only this worker writes it in this frame; the reset by begin_frame is ordered
  // before by the acquire load of current_row_ in allocate().
  const std::size_t used = arena.used_bytes.load(std::memory_order_relaxed);
  const std::size_t pad = padding_for(arena.base, used, alignment);
  if (!fits(arena, used, pad, bytes)) return nullptr;
  // relaxed: single writer; usage() reads a statistic (pairs with nothing).
  arena.used_bytes.store(used + pad + bytes, std::memory_order_relaxed);
  return arena.base + used + pad;
}

/// Bump on the shared arena with a CAS, so a refused request leaves the arena unchanged (a
/// fetch_add would have to reserve worst-case padding and, once over budget, would refuse every
/// later request of the frame, however small).
void* bump_shared(detail::FrameArena& arena, std::size_t bytes, std::size_t alignment) noexcept {
  if (bytes > arena.capacity_bytes) return nullptr;
  bytes = (bytes + kSharedGranuleBytes - 1) / kSharedGranuleBytes * kSharedGranuleBytes;
  alignment = std::max(alignment, kSharedGranuleBytes);
  // relaxed: the reset by begin_frame is ordered before by the acquire load of current_row_.
  std::size_t used = arena.used_bytes.load(std::memory_order_relaxed);
  std::size_t pad = 0;
  do {
    pad = padding_for(arena.base, used, alignment);
    if (!fits(arena, used, pad, bytes)) return nullptr;
    // relaxed: the CAS only reserves a disjoint range; it publishes no data (the caller writes
    // the range afterwards and publishes it by its own means). Pairs with nothing.
  } while (!arena.used_bytes.compare_exchange_weak(
      used, used + pad + bytes, std::memory_order_relaxed, std::memory_order_relaxed));
  return arena.base + used + pad;
}

void poison(void* memory, std::size_t bytes) noexcept {
#if defined(FIBERJOB_ASAN)
  ASAN_POISON_MEMORY_REGION(memory, bytes);
#else
  static_cast<void>(memory);
  static_cast<void>(bytes);
#endif
}

void unpoison(void* memory, std::size_t bytes) noexcept {
#if defined(FIBERJOB_ASAN)
  ASAN_UNPOISON_MEMORY_REGION(memory, bytes);
#else
  static_cast<void>(memory);
  static_cast<void>(bytes);
#endif
}

}  // namespace

FrameAllocator::FrameAllocator(JobSystem& system, const FrameAllocatorConfig& config)
    : system_(system), worker_count_(system.worker_count()), frames_(config.frames) {
  if (config.frames == 0) {
    reject("FrameAllocatorConfig::frames = 0; it must be >= 1 (frames in flight)");
  }
  const std::size_t worker_stride = stride_of(config.bytes_per_worker, "bytes_per_worker");
  const std::size_t shared_stride = stride_of(config.shared_bytes, "shared_bytes");
  const std::size_t workers_bytes = checked_mul(worker_count_, worker_stride, "bytes_per_worker");
  if (workers_bytes > kMaxSize - shared_stride) {
    reject(
        "FrameAllocatorConfig::bytes_per_worker and shared_bytes are too large: the size of "
        "one frame overflows");
  }
  const std::size_t row_bytes = workers_bytes + shared_stride;
  block_bytes_ = checked_mul(frames_, row_bytes, "frames");

  const std::size_t row_arenas = worker_count_ + 1;
  arenas_ = std::make_unique<detail::FrameArena[]>(checked_mul(frames_, row_arenas, "frames"));
  // At least one cache line, so block_ is a real allocation even with empty budgets.
  block_ = static_cast<std::byte*>(
      ::operator new (std::max(block_bytes_, kCacheLineBytes), std::align_val_t{kCacheLineBytes}));
  for (std::size_t slot = 0; slot < frames_; ++slot) {
    std::byte* row = block_ + slot * row_bytes;
    for (std::size_t i = 0; i < row_arenas; ++i) {
      detail::FrameArena& arena = arenas_[slot * row_arenas + i];
      const bool shared = i == worker_count_;
      arena.base = row + i * worker_stride;
      arena.capacity_bytes = shared ? config.shared_bytes : config.bytes_per_worker;
      arena.stride_bytes = shared ? shared_stride : worker_stride;
    }
  }
  // Touch every page now, so no frame pays for first-touch page faults.
#if defined(NDEBUG)
  std::memset(block_, 0, block_bytes_);
#else
  std::memset(block_, kFreedByte, block_bytes_);
#endif
  poison(block_, block_bytes_);
  // relaxed: the allocator reaches other threads only through the user's own synchronization
  // (e.g. JobSystem::run, a release), which publishes the whole constructed object.
  current_row_.store(arenas_.get(), std::memory_order_relaxed);
}

FrameAllocator::~FrameAllocator() {
  unpoison(block_, block_bytes_);
  ::operator delete (block_, std::align_val_t{kCacheLineBytes});
}

detail::FrameArena* FrameAllocator::row_of(std::uint64_t index) const noexcept {
  return arenas_.get() + static_cast<std::size_t>(index % frames_) * (worker_count_ + 1);
}

void* FrameAllocator::allocate(std::size_t bytes, std::size_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    throw std::invalid_argument("fiberjob: FrameAllocator::allocate: alignment " +
                                std::to_string(alignment) + " is not a power of two");
  }
  bytes = std::max<std::size_t>(bytes, 1);
  // acquire: pairs with the release store in begin_frame(), so this bump sees the row reset.
  detail::FrameArena* row = current_row_.load(std::memory_order_acquire);
  // Looked up on every call, never cached: a job may have moved to another worker since its
  // last call. allocate() does not suspend, so the worker stays the same until it returns.
  const std::size_t worker = system_.current_worker_index();
  const bool on_worker = worker < worker_count_;
  detail::FrameArena& arena = row[on_worker ? worker : worker_count_];
  void* memory =
      on_worker ? bump_worker(arena, bytes, alignment) : bump_shared(arena, bytes, alignment);
  if (memory == nullptr) {
    throw_exhausted(on_worker ? worker : Context::kNotAWorker, arena, bytes, alignment);
  }
  unpoison(memory, bytes);
  return memory;
}

void FrameAllocator::throw_exhausted(std::size_t worker, const detail::FrameArena& arena,
                                     std::size_t bytes, std::size_t alignment) {
  // relaxed: a statistic (pairs with nothing).
  exhausted_.fetch_add(1, std::memory_order_relaxed);
  // relaxed: a figure for the message.
  const std::size_t used = arena.used_bytes.load(std::memory_order_relaxed);
  const bool shared = worker == Context::kNotAWorker;
  const std::string field = shared ? "shared_bytes" : "bytes_per_worker";
  const std::string who =
      shared ? std::string("a thread that is not a worker of the JobSystem (shared arena)")
             : "worker " + std::to_string(worker);
  throw Error(ErrorCode::FrameAllocatorExhausted,
              "fiberjob: FrameAllocator: " + who + " asked for " + std::to_string(bytes) +
                  " bytes (alignment " + std::to_string(alignment) + ") in frame " +
                  std::to_string(frame_index()) + ", but only " +
                  std::to_string(arena.capacity_bytes - used) + " of FrameAllocatorConfig::" +
                  field + " = " + std::to_string(arena.capacity_bytes) +
                  " bytes are left this frame; raise FrameAllocatorConfig::" + field +
                  " (FrameAllocator::usage() shows the peaks) or allocate less per frame");
}

void FrameAllocator::fold_peaks(const detail::FrameArena* row) noexcept {
  std::size_t total = 0;
  std::size_t worker_peak = 0;
  for (std::size_t i = 0; i < worker_count_; ++i) {
    // relaxed: the frame is over (ordered by the user's wait); a statistic.
    const std::size_t used = row[i].used_bytes.load(std::memory_order_relaxed);
    total += used;
    worker_peak = std::max(worker_peak, used);
  }
  // relaxed: as above.
  const std::size_t shared = row[worker_count_].used_bytes.load(std::memory_order_relaxed);
  total += shared;
  // relaxed (all six): begin_frame is the only writer; usage() reads statistics.
  peak_bytes_.store(std::max(peak_bytes_.load(std::memory_order_relaxed), total),
                    std::memory_order_relaxed);
  peak_worker_bytes_.store(
      std::max(peak_worker_bytes_.load(std::memory_order_relaxed), worker_peak),
      std::memory_order_relaxed);
  peak_shared_bytes_.store(std::max(peak_shared_bytes_.load(std::memory_order_relaxed), shared),
                           std::memory_order_relaxed);
}

void FrameAllocator::reset_row(detail::FrameArena* row) noexcept {
  for (std::size_t i = 0; i <= worker_count_; ++i) {
    detail::FrameArena& arena = row[i];
    // relaxed: the frame's bumps are ordered before by the user's wait (see the file comment).
    [[maybe_unused]] const std::size_t used = arena.used_bytes.load(std::memory_order_relaxed);
#if !defined(NDEBUG)
    unpoison(arena.base, used);  // the padding between allocations is still poisoned
    std::memset(arena.base, kFreedByte, used);
#endif
    poison(arena.base, arena.stride_bytes);
    // relaxed: published to the next frame's bumps by the release store of current_row_.
    arena.used_bytes.store(0, std::memory_order_relaxed);
  }
}

void FrameAllocator::begin_frame() noexcept {
  // relaxed: begin_frame is the only writer, and calls are not concurrent.
  const std::uint64_t next = frame_index_.load(std::memory_order_relaxed) + 1;
  detail::FrameArena* row = row_of(next);
  fold_peaks(row);
  reset_row(row);
  // release: pairs with the acquire load in allocate(): a bump in the new row sees it reset.
  current_row_.store(row, std::memory_order_release);
  // release: pairs with the acquire load in frame_index(): who sees `next` sees the new row.
  frame_index_.store(next, std::memory_order_release);
}

std::uint64_t FrameAllocator::frame_index() const noexcept {
  // acquire: pairs with the release store in begin_frame().
  return frame_index_.load(std::memory_order_acquire);
}

FrameAllocator::Usage FrameAllocator::usage() const noexcept {
  Usage usage{};
  // relaxed (every load below): statistics; a snapshot, not a consistent cut.
  usage.peak_bytes = peak_bytes_.load(std::memory_order_relaxed);
  usage.peak_worker_bytes = peak_worker_bytes_.load(std::memory_order_relaxed);
  usage.peak_shared_bytes = peak_shared_bytes_.load(std::memory_order_relaxed);
  usage.exhausted = exhausted_.load(std::memory_order_relaxed);
  const detail::FrameArena* current = row_of(frame_index_.load(std::memory_order_relaxed));
  // The frames still in the ring have not been folded into the peaks yet.
  for (std::size_t slot = 0; slot < frames_; ++slot) {
    const detail::FrameArena* row = arenas_.get() + slot * (worker_count_ + 1);
    std::size_t total = 0;
    for (std::size_t i = 0; i < worker_count_; ++i) {
      const std::size_t used = row[i].used_bytes.load(std::memory_order_relaxed);
      total += used;
      usage.peak_worker_bytes = std::max(usage.peak_worker_bytes, used);
    }
    const std::size_t shared = row[worker_count_].used_bytes.load(std::memory_order_relaxed);
    total += shared;
    usage.peak_shared_bytes = std::max(usage.peak_shared_bytes, shared);
    usage.peak_bytes = std::max(usage.peak_bytes, total);
    if (row == current) {
      usage.bytes_used = total;
      usage.shared_bytes_used = shared;
    }
  }
  return usage;
}

}  // namespace fiberjob
