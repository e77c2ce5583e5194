#pragma once
// FiberPool: guard-paged fiber stacks in chunks that grow on demand up to a hard limit; two
// lock-free free stacks (warm fibers first, then fibers whose stack pages were given back).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "fiber.hpp"
#include "fiberjob/detail/cache_line.hpp"

namespace fiberjob::detail {

/// Entry of every pooled fiber: runs the dispatch loop and returns the continuation to resume
/// when the fiber retires.
using FiberEntry = boost::context::fiber (*)(Fiber* self, boost::context::fiber&& caller);

/// All fibers of one scheduler, in chunks of kChunkFibers. Each chunk is one mmap region
/// (MAP_NORESERVE: pages cost RSS only once touched) with a 64 KiB PROT_NONE guard below each
/// stack, so that an overflow faults instead of corrupting a neighbour (reported by the handler
/// in stack_guard.cpp). Chunks covering `warm_count` fibers are made up front; more are made
/// when a fiber is needed and none is free, until `max_count` fibers exist. Boost.Context
/// fibers are constructed lazily, on first acquire.
///
/// Fibers with an index below `warm_count` keep their stack pages. The others ("cold") give the
/// pages below their live frames back to the OS (madvise MADV_DONTNEED) whenever they return
/// to the pool, so a burst of suspended jobs does not leave the resident set at its high-water
/// mark. acquire() takes a warm fiber first, then a cold one, and grows the pool last.
///
/// Each free list is a Treiber stack of fiber indices whose head packs {tag:43, index+1:21}
/// into one 64-bit word; the tag changes on every push and pop, which stops ABA without a
/// double-width CAS.
class FiberPool {
 public:
  /// Fibers per chunk (one mmap, one growth step).
  static constexpr std::uint32_t kChunkFibers = 64;

  /// Makes the chunks for `warm_count` fibers. Errors: std::system_error when the OS refuses
  /// the memory (the message names the Config fields and vm.max_map_count).
  /// `stack_class` and `class_name` say which class of stacks this pool holds (0, "default"
  /// for Config::fiber_stack_size; i + 1 and its name for Config::stack_classes[i]).
  FiberPool(Scheduler& scheduler, std::uint32_t warm_count, std::uint32_t max_count,
            std::size_t stack_size, FiberEntry entry, std::uint8_t stack_class = 0,
            std::string class_name = "default");
  ~FiberPool();
  FiberPool(const FiberPool&) = delete;
  FiberPool& operator=(const FiberPool&) = delete;

  /// Takes a free fiber, ready to be switched to (its next act is the dispatch loop): a warm
  /// one, else a cold one, else one of a new chunk. Returns nullptr when `max_count` fibers
  /// are in use or the OS refused a new chunk (growth_error() tells which). Lock-free unless
  /// it grows the pool (a mutex serialises the growers; the mmap is a system call anyway).
  /// Any thread.
  Fiber* acquire() noexcept;
  /// Returns a fiber whose stack no longer runs (called by the fiber that switched away from
  /// it). A cold fiber's unused stack pages go back to the OS first (one madvise call). In a
  /// stack class's pool, a job waiting for a fiber (park_job) then goes back to the queues.
  /// `worker`: the calling worker (its injector tokens), or nullptr.
  void release(Fiber* fiber, Worker* worker = nullptr) noexcept;

  /// Stack classes (class_wait.cpp): keeps a plain job of this class that found every fiber of
  /// the class in use until one comes back (release), then queues it in the injector and wakes
  /// a worker. The worker that parked it goes on with other work, or parks its thread: nothing
  /// spins while a class job waits. Any worker thread.
  void park_job(Job job, Worker* worker) noexcept;
  /// Jobs kept by park_job right now (diagnostics; relaxed).
  [[nodiscard]] std::size_t parked_jobs() const noexcept {
    return parked_count_.load(std::memory_order_relaxed);  // relaxed: see parked_count_
  }
  /// Stack classes (class_wait.cpp): a plain job on one of this pool's fibers is about to
  /// suspend in a wait, holding its fiber meanwhile. Returns false, changing nothing, when that
  /// would leave every fiber the class may have held by suspended jobs (max_count - 1 holders
  /// at most), so that a job of the class can always start eventually; the caller then throws
  /// Error (FiberPoolExhausted). Pair a true return with end_hold once resumed.
  [[nodiscard]] bool hold_while_suspended() noexcept;
  /// Ends a hold of hold_while_suspended (the job was resumed, or did not suspend after all).
  void end_hold() noexcept;

  /// Resumes every started pooled fiber once with `quit` set, so that each returns from its
  /// entry normally (destroying a suspended Boost.Context fiber would unwind it through an
  /// unannotated switch). Call on a plain thread after all workers stopped.
  /// Returns the number of fibers that are not in the pool (still suspended: left unwound).
  std::uint32_t retire_all() noexcept;

  /// The Config::fiber_count fibers kept warm.
  [[nodiscard]] std::uint32_t warm_count() const noexcept { return warm_count_; }
  /// The hard limit (Config::max_fiber_count).
  [[nodiscard]] std::uint32_t max_count() const noexcept { return max_count_; }
  /// Fibers made so far (chunks times their size): grows, never shrinks.
  [[nodiscard]] std::uint32_t created() const noexcept {
    // acquire: pairs with the release store in grow(): the new chunk's pointer is visible.
    return created_.load(std::memory_order_acquire);
  }
  [[nodiscard]] std::uint32_t in_use() const noexcept {
    return in_use_.load(std::memory_order_relaxed);  // relaxed: a statistic
  }
  [[nodiscard]] std::uint32_t high_water() const noexcept {
    return high_water_.load(std::memory_order_relaxed);  // relaxed: a statistic
  }
  [[nodiscard]] std::size_t stack_size() const noexcept { return stack_size_; }
  [[nodiscard]] std::uint8_t stack_class() const noexcept { return stack_class_; }
  /// The class's name (Config::stack_classes[i].name, or "default"). Async-signal-safe.
  [[nodiscard]] const char* class_name() const noexcept { return class_name_.c_str(); }
  /// The errno of the last refused growth (0: none; the pool was at max_count instead).
  [[nodiscard]] int growth_error() const noexcept {
    return growth_error_.load(std::memory_order_relaxed);  // relaxed: read after a failure
  }

  /// Calls `fn(fiber)` for every fiber that is suspended right now (diagnostics: racy but
  /// safe; reads the fibers' state atomics and their fields fixed at construction).
  template <class Fn>
  void for_each_suspended(Fn&& fn) const {
    const std::uint32_t count = created();
    for (std::uint32_t i = 0; i < count; ++i) {
      const Fiber& fiber = at(i);
      if (state_of(fiber) == FiberState::Suspended) fn(fiber);
    }
  }

  /// If `address` lies in one of this pool's guard pages, returns the index of the fiber whose
  /// stack overflowed into it, else -1. Async-signal-safe (reads atomics and constants only).
  [[nodiscard]] long guard_page_owner(const void* address) const noexcept;

 private:
  /// One growth step: kChunkFibers fibers (fewer in the last chunk) and their stacks.
  struct Chunk {
    unsigned char* region = nullptr;
    std::size_t region_size = 0;
    std::uint32_t first = 0;  ///< Index of the chunk's first fiber.
    std::uint32_t count = 0;
    Fiber* fibers = nullptr;
  };
  /// A Treiber stack of free fiber indices.
  struct FreeList {
    /// {tag:43 | (index + 1):21}; 0 in the index bits = empty.
    alignas(kCacheLineBytes) std::atomic<std::uint64_t> head{0};
  };

  /// Makes the next chunk (grow_mutex_ held, or the constructor): its fibers but the first go
  /// into the free lists, and the first is returned, taken. Returns nullptr at max_count_, or
  /// with errno in growth_error_ when the OS refuses.
  Fiber* add_chunk() noexcept;
  /// Frees every chunk (the destructor, or a constructor that failed half-way).
  void free_chunks() noexcept;
  /// The slow path of acquire: grows the pool, or finds that another thread did.
  Fiber* grow() noexcept;
  Fiber* pop(FreeList& list) noexcept;
  void push(FreeList& list, Fiber& fiber) noexcept;
  /// True when acquire() could give a fiber now (a free one, or room to grow). Racy: a hint.
  [[nodiscard]] bool may_have_free_fiber() const noexcept;
  /// Queues the oldest job kept by park_job, if any, in the injector (class_wait.cpp).
  void unpark_one(Worker* worker) noexcept;
  /// Gives the stack pages of a cold fiber below its live frames back to the OS.
  void trim(Fiber& fiber) noexcept;
  void construct_context(Fiber& fiber);
  [[nodiscard]] Fiber& at(std::uint32_t index) const noexcept {
    // acquire: pairs with the release store of the chunk pointer in add_chunk.
    return chunks_[index / kChunkFibers]
        .load(std::memory_order_acquire)
        ->fibers[index % kChunkFibers];
  }

  Scheduler& scheduler_;
  std::uint32_t warm_count_;
  std::uint32_t max_count_;
  std::size_t stack_size_;
  std::size_t guard_size_;
  std::size_t page_size_;
  FiberEntry entry_;
  std::uint8_t stack_class_;
  std::string class_name_;
  /// One slot per possible chunk (max_count_ / kChunkFibers, rounded up); filled in order.
  std::unique_ptr<std::atomic<Chunk*>[]> chunks_;
  std::uint32_t chunk_slots_ = 0;
  /// Fibers made so far; stored (release) after their chunk is published.
  std::atomic<std::uint32_t> created_{0};
  /// errno of the last refused mmap or mprotect (relaxed: read by the thread that saw the
  /// failure, or later for a message).
  std::atomic<int> growth_error_{0};
  std::mutex grow_mutex_;
  FreeList warm_;
  FreeList cold_;
  /// Fibers handed out by acquire() and not yet given back by release(): 0..max_count_.
  /// Written by any thread that acquires (fetch_add) or releases (fetch_sub) a fiber; read by
  /// in_use() for stats() and write_diagnostics. Every access is relaxed and pairs with
  /// nothing: a statistic that orders no other data (docs/memory_ordering.md, "Fiber pool").
  alignas(kCacheLineBytes) std::atomic<std::uint32_t> in_use_{0};
  /// The largest in_use_ value any acquire() saw; only grows. Written by acquire() (a relaxed
  /// load, then a relaxed CAS loop that raises it); read by high_water() for stats(). Relaxed
  /// throughout, pairs with nothing: a statistic, like in_use_.
  std::atomic<std::uint32_t> high_water_{0};
  /// Stack classes: plain jobs suspended in a wait while holding one of this pool's fibers
  /// (hold_while_suspended / end_hold), 0..max_count_ - 1. Relaxed RMWs: the bound holds by
  /// their total order on this one variable; it orders no other data.
  std::atomic<std::uint32_t> suspended_holders_{0};
  /// Stack classes: the jobs park_job keeps (oldest first), under parked_mutex_. Only jobs
  /// that found the class exhausted come here: a slow path.
  std::mutex parked_mutex_;
  std::deque<Job> parked_;
  /// parked_.size(), written under parked_mutex_. Read without the lock by release(): the
  /// store (under the lock) and release()'s load are each followed/preceded by a seq_cst
  /// fence, which pairs park_job's "kept, then look for a free fiber" with release()'s "freed,
  /// then look for a kept job" (Dekker): at least one of the two sees the other.
  std::atomic<std::size_t> parked_count_{0};
};

}  // namespace fiberjob::detail
