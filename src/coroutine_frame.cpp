// Recycling pools for coroutine frames: per thread, a free list per 64-byte size class. A frame
// remembers the pool it came from; a frame that ends on another thread goes back to that pool
// through the pool's remote list (a lock-free stack that only the owner empties, in one
// exchange), as mimalloc's thread-delayed frees do. So each pool holds exactly the frames its
// thread made, and a warm thread never calls the global allocator, however its coroutines
// migrate.

#include "fiberjob/detail/coroutine_frame.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

#include "sanitizer.hpp"

#if defined(FIBERJOB_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace fiberjob::detail {
namespace {

constexpr std::size_t kClassBytes = 64;
constexpr std::size_t kClasses = kMaxPooledFrameBytes / kClassBytes;
/// A pool keeps at most this many bytes of free frames per size class in its local list.
constexpr std::size_t kKeptBytesPerClass = 1024 * 1024;

class FramePool;

/// Before every pooled frame: its pool and size class (16 bytes keep the frame 16-aligned).
struct alignas(16) FrameHeader {
  FramePool* owner;  ///< nullptr: from the global allocator, back to it
  std::size_t size_class;
};
static_assert(sizeof(FrameHeader) == 16);

/// A free frame: the link lives in the frame's first bytes (after the header).
struct FreeFrame {
  FreeFrame* next;
};

std::size_t class_of(std::size_t bytes) noexcept { return (bytes + kClassBytes - 1) / kClassBytes; }
std::size_t block_bytes(std::size_t c) noexcept { return sizeof(FrameHeader) + c * kClassBytes; }
FrameHeader* header_of(void* frame) noexcept {
  return reinterpret_cast<FrameHeader*>(static_cast<unsigned char*>(frame) - sizeof(FrameHeader));
}

// Under ASan a pooled frame is poisoned but for its link, so a use after the coroutine ended
// is still reported.
void poison([[maybe_unused]] FreeFrame* frame, [[maybe_unused]] std::size_t c) noexcept {
#if defined(FIBERJOB_ASAN)
  ASAN_POISON_MEMORY_REGION(reinterpret_cast<char*>(frame) + sizeof(FreeFrame),
                            c * kClassBytes - sizeof(FreeFrame));
#endif
}
void unpoison([[maybe_unused]] FreeFrame* frame, [[maybe_unused]] std::size_t c) noexcept {
#if defined(FIBERJOB_ASAN)
  ASAN_UNPOISON_MEMORY_REGION(frame, c * kClassBytes);
#endif
}

/// One thread's pool. Never destroyed: frames it made may end on other threads after its
/// thread exited; an exited thread's pool waits in the orphan list for a new thread to adopt.
/// Index 0 of the arrays is unused (a frame has at least one byte).
class FramePool {
 public:
  void* allocate(std::size_t c) {
    FreeFrame* frame = local_[c];
    if (frame == nullptr) [[unlikely]] {
      // acquire: pairs with the release CAS in free_remote: the frames' links are visible.
      frame = remote_[c].exchange(nullptr, std::memory_order_acquire);
      if (frame == nullptr) {
        auto* header = static_cast<FrameHeader*>(::operator new(block_bytes(c)));
        header->owner = this;
        header->size_class = c;
        return header + 1;
      }
      for (FreeFrame* f = frame; f != nullptr; f = f->next) ++local_count_[c];
    }
    local_[c] = frame->next;
    --local_count_[c];
    unpoison(frame, c);
    return frame;
  }

  /// A frame of this pool, freed by its own thread. Past kKeptBytesPerClass of free frames
  /// in the class, it goes back to the global allocator: a burst's frames are not kept forever.
  void free_local(void* memory, std::size_t c) noexcept {
    if (local_count_[c] * c * kClassBytes >= kKeptBytesPerClass) {
      ::operator delete(header_of(memory));
      return;
    }
    auto* frame = static_cast<FreeFrame*>(memory);
    frame->next = local_[c];
    local_[c] = frame;
    ++local_count_[c];
    poison(frame, c);
  }

  /// A frame of this pool, freed by another thread (or after the owner exited).
  void free_remote(void* memory, std::size_t c) noexcept {
    auto* frame = static_cast<FreeFrame*>(memory);
    // relaxed: a first guess for the CAS.
    FreeFrame* head = remote_[c].load(std::memory_order_relaxed);
    do {
      frame->next = head;
      // release: pairs with the acquire exchange in allocate (the link, and the coroutine's
      // last writes to the frame, happen before the owner reuses it). Push-only: the owner
      // takes the whole list at once, so there is no ABA.
    } while (!remote_[c].compare_exchange_weak(head, frame, std::memory_order_release,
                                               std::memory_order_relaxed));
    poison(frame, c);
  }

 private:
  std::array<FreeFrame*, kClasses + 1> local_{};
  std::array<std::size_t, kClasses + 1> local_count_{};
  /// Per size class: a push-only Treiber stack of frames freed by other threads; nullptr =
  /// empty. Pushed by any thread (free_remote: release CAS), taken whole by the owner
  /// (allocate: acquire exchange, pairs with the push).
  std::array<std::atomic<FreeFrame*>, kClasses + 1> remote_{};
};

/// Pools of exited threads, adopted by new threads (a new JobSystem's workers reuse the
/// frames of the last one's). A mutex: taken once per thread start and exit.
struct Orphans {
  std::mutex mutex;
  std::vector<FramePool*> pools;
};
Orphans& orphans() noexcept {
  static Orphans* list = new Orphans;  // never destroyed: threads exit during static destruction
  return *list;
}

/// Set once the thread's pool went to the orphan list (thread exit): frames made after that
/// come from the global allocator.
thread_local bool t_exited = false;

/// The calling thread's pool, nullptr until it is made or adopted (and again once the thread
/// exits): what every allocation and free reads. initial-exec, as `current_worker`'s variable
/// (src/worker.cpp): one %fs-relative load instead of two general-dynamic TLS calls (this one
/// and ThreadPool's init guard): 19 instructions fewer per coroutine job. A process that
/// dlopen()s a shared library holding fiberjob needs its 8 bytes of the static TLS surplus.
[[gnu::tls_model("initial-exec")]] thread_local FramePool* t_pool_fast = nullptr;

/// The hand-over of the calling thread's pool to the orphan list at thread exit. Touched only
/// when the pool is made (its first use registers the destructor), never on the fast path.
struct ThreadPool {
  FramePool* pool = nullptr;
  ~ThreadPool() {
    if (pool == nullptr) return;
    try {
      const std::lock_guard<std::mutex> lock(orphans().mutex);
      orphans().pools.push_back(pool);
    } catch (...) {  // no memory for the list: the pool stays unowned, its frames unused
    }
    pool = nullptr;
    t_pool_fast = nullptr;
    t_exited = true;
  }
};
thread_local ThreadPool t_pool;

/// this_thread_pool's first call on a thread: adopts an orphaned pool or makes one, and
/// registers its hand-over at thread exit; nullptr during thread exit.
[[gnu::noinline]] FramePool* make_thread_pool() {
  if (t_exited) return nullptr;
  FramePool* pool = nullptr;
  {
    const std::lock_guard<std::mutex> lock(orphans().mutex);
    if (!orphans().pools.empty()) {
      pool = orphans().pools.back();
      orphans().pools.pop_back();
    }
  }
  if (pool == nullptr) pool = new FramePool;
  t_pool.pool = pool;
  t_pool_fast = pool;
  return pool;
}

/// The calling thread's pool, made or adopted on first use; nullptr during thread exit. Not
/// inline (this file's functions are never inlined into user code): a caller that suspends its
/// fiber between two frame allocations re-reads it, so a migrated fiber uses its new thread's
/// pool (the thread-local hazard, docs/architecture.md).
FramePool* this_thread_pool() {
  if (FramePool* pool = t_pool_fast) [[likely]]
    return pool;
  return make_thread_pool();
}

}  // namespace

void* allocate_coroutine_frame(std::size_t bytes) {
  if (bytes > kMaxPooledFrameBytes) return ::operator new(bytes);
  const std::size_t c = class_of(bytes);
  if (FramePool* pool = this_thread_pool(); pool != nullptr) [[likely]] {
    return pool->allocate(c);
  }
  auto* header = static_cast<FrameHeader*>(::operator new(block_bytes(c)));
  header->owner = nullptr;
  header->size_class = c;
  return header + 1;
}

void free_coroutine_frame(void* frame, std::size_t bytes) noexcept {
  if (bytes > kMaxPooledFrameBytes) {
    ::operator delete(frame);
    return;
  }
  FrameHeader* header = header_of(frame);
  FramePool* owner = header->owner;
  const std::size_t c = header->size_class;
  if (owner == nullptr) {
    ::operator delete(header);
  } else if (owner == t_pool_fast) {
    owner->free_local(frame, c);
  } else {
    owner->free_remote(frame, c);
  }
}

}  // namespace fiberjob::detail
