#pragma once
/// \file
/// `FrameAllocator`: per-frame linear (bump) memory for the jobs of a game frame.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <memory_resource>
#include <type_traits>

namespace fiberjob {

class JobSystem;

namespace detail {
struct FrameArena;
}  // namespace detail

/// Sizes of a `FrameAllocator`, checked by its constructor: a field out of range throws
/// `Error` (`ErrorCode::InvalidConfig`) naming the field. All memory is reserved up front:
/// `frames * (worker_count * bytes_per_worker + shared_bytes)` bytes, plus padding to keep every
/// arena on its own cache lines.
struct FrameAllocatorConfig {
  /// Budget of one worker's arena for one frame, in bytes (may be 0). Default 1 MiB.
  std::size_t bytes_per_worker = std::size_t{1} << 20;
  /// Budget of the shared arena for one frame, in bytes (may be 0): what threads that are not
  /// workers of the `JobSystem` (e.g. the main thread) allocate, bumped atomically. Default 1 MiB.
  std::size_t shared_bytes = std::size_t{1} << 20;
  /// Frames in flight (>= 1): the memory of a frame stays valid until `frames` more
  /// `begin_frame()` calls have been made. Default 3.
  std::uint32_t frames = 3;
};

/// Per-frame linear memory. Each worker of a `JobSystem` bumps a pointer in its own arena
/// (no atomics, no locks, no sharing of cache lines); any other thread bumps a shared arena with
/// a compare-and-swap. There is no free: a ring of `FrameAllocatorConfig::frames` slots is
/// recycled one slot per `begin_frame()`, which makes everything allocated `frames` frames ago
/// invalid at once.
///
/// ```
///   frame_index():   0    1    2    3    4 ...      (frames = 3)
///   slot used:       0    1    2    0    1
///                    ^ reset by begin_frame() that makes frame 3 current
/// ```
///
/// Over budget, `allocate` throws `Error` (`FrameAllocatorExhausted`) naming the config field to
/// raise; the arena is left as it was (earlier allocations are untouched and smaller requests may
/// still succeed). All memory comes from one block allocated (and touched, so the first frame
/// takes no page faults) in the constructor; allocation never calls the global allocator.
///
/// Debug builds (NDEBUG not defined) fill a frame's memory with 0xDD when its slot is reset;
/// AddressSanitizer builds also poison it and unpoison each allocation, so a use after the frame
/// (or of alignment padding) is reported.
///
/// Thread-safety: `allocate`, `allocate_array`, `resource()`, `frame_index`, `usage` from any
/// thread, concurrently. `begin_frame` from one thread at a time (the game loop); see its
/// contract. The `JobSystem` must outlive the allocator.
class FrameAllocator {
 public:
  /// What the frames have used. Sizes include alignment padding.
  struct Usage {
    /// The current frame, all arenas.
    std::size_t bytes_used;
    /// The current frame, the shared arena alone (allocations off the workers).
    std::size_t shared_bytes_used;
    /// The most one frame has used, all arenas, since construction.
    std::size_t peak_bytes;
    /// The most one worker's arena has used in one frame since construction: compare with
    /// `FrameAllocatorConfig::bytes_per_worker`.
    std::size_t peak_worker_bytes;
    /// The most the shared arena has used in one frame since construction: compare with
    /// `FrameAllocatorConfig::shared_bytes`.
    std::size_t peak_shared_bytes;
    /// Allocations refused for lack of budget since construction.
    std::uint64_t exhausted;
  };

  /// Allocates and touches every arena of every frame slot (one block); frame 0 is current.
  /// Thread-safety: share the allocator with the jobs after construction, e.g. by `run`.
  /// Errors: `Error` (`InvalidConfig`) naming the field when `config` is out of range (frames
  ///   is 0, or the total size overflows); std::bad_alloc when the memory cannot be had.
  /// \param system the job system whose workers get one arena each; must outlive the allocator.
  /// \param config the arena sizes in bytes and the number of frames in flight.
  explicit FrameAllocator(JobSystem& system, const FrameAllocatorConfig& config = {});
  /// Frees every arena. No job may allocate from it or use its memory any more.
  ~FrameAllocator();
  FrameAllocator(const FrameAllocator&) = delete;
  FrameAllocator& operator=(const FrameAllocator&) = delete;

  /// Ends the current frame and makes frame `frame_index() + 1` current, in the ring slot that
  /// held frame `frame_index() + 1 - frames`, whose memory it resets (debug: fills with 0xDD;
  /// ASan: poisons). Everything allocated in that old frame becomes invalid.
  /// Call it from the game loop once the jobs of frame `frame_index() + 1 - frames` are done
  /// (e.g. after waiting on their counters) and nothing reads their frame memory any more. With
  /// `frames == 1` that is the current frame itself.
  /// Suspends: no. Allocation: none.
  /// Thread-safety: one caller at a time. `allocate` may run concurrently in other frames'
  ///   slots (with frames >= 2, the frame being ended keeps working), never in the reset one.
  /// Complexity: O(worker_count); debug builds add a fill of the bytes the old frame used.
  void begin_frame() noexcept;

  /// Returns `bytes` of uninitialized memory aligned to `alignment`, valid until `frames` more
  /// `begin_frame()` calls. On a worker of the `JobSystem`: from that worker's arena of the
  /// current frame (a plain bump, no atomic RMW); on any other thread: from the shared arena
  /// (a compare-and-swap bump). The worker is looked up on every call, so a job that suspended
  /// and moved to another worker allocates from the new one's arena.
  /// A request of 0 bytes takes 1, so every returned pointer is distinct.
  /// Suspends: no. Allocation: none (never the global allocator). Complexity: O(1).
  /// Thread-safety: any thread.
  /// Errors: `Error` (`FrameAllocatorExhausted`) when the arena cannot fit the request this
  ///   frame — the message names `FrameAllocatorConfig::bytes_per_worker` or `shared_bytes`
  ///   and the sizes; nothing is allocated and the arena is unchanged.
  ///   std::invalid_argument when `alignment` is not a power of two.
  /// \param bytes size of the block in bytes (0 is taken as 1).
  /// \param alignment alignment in bytes, a power of two.
  /// \return the block, never null.
  [[nodiscard]] void* allocate(std::size_t bytes,
                               std::size_t alignment = alignof(std::max_align_t));

  /// Uninitialized storage for `count` objects of type `T`, aligned for `T`. Frame memory is
  /// never destroyed, so `T` must be trivially destructible. Create the objects with placement
  /// new or `std::uninitialized_*` (implicit-lifetime types such as scalars and trivial structs
  /// may simply be assigned). Same contract as `allocate` (a size that overflows is over budget).
  /// \tparam T the element type, trivially destructible.
  /// \param count number of elements.
  /// \return storage for `count` elements, never null.
  template <class T>
  [[nodiscard]] T* allocate_array(std::size_t count) {
    static_assert(std::is_trivially_destructible_v<T>,
                  "FrameAllocator::allocate_array: frame memory is reset without running "
                  "destructors, so T must be trivially destructible");
    constexpr std::size_t kMaxCount = std::numeric_limits<std::size_t>::max() / sizeof(T);
    const std::size_t bytes =
        count > kMaxCount ? std::numeric_limits<std::size_t>::max() : count * sizeof(T);
    return static_cast<T*>(allocate(bytes, alignof(T)));
  }

  /// A `std::pmr::memory_resource` over `allocate`, so `std::pmr` containers can live in frame
  /// memory: `do_allocate` calls `allocate` (same errors), `do_deallocate` does nothing (growth
  /// leaves the old buffer in the frame until it is reset). Resources of two allocators never
  /// compare equal. Destroy or abandon such containers before their frame is reset; abandoning
  /// is fine when the elements are trivially destructible. Valid as long as the allocator.
  /// \return the resource, owned by the allocator.
  [[nodiscard]] std::pmr::memory_resource* resource() noexcept { return &resource_; }

  /// Index of the current frame: 0 after construction, + 1 per `begin_frame()`. A thread that
  /// reads `f` here allocates afterwards in frame `f` or a later one.
  /// Thread-safety: any thread.
  /// \return the index of the current frame.
  [[nodiscard]] std::uint64_t frame_index() const noexcept;

  /// What the current frame uses now, peaks and refusals since construction. Read while jobs
  /// allocate, the numbers are a snapshot, not a consistent cut.
  /// Thread-safety: any thread; relaxed loads only. Complexity: O(frames * worker_count).
  /// \return a snapshot of the usage counters.
  [[nodiscard]] Usage usage() const noexcept;

 private:
  /// The memory_resource face of the allocator.
  class Resource final : public std::pmr::memory_resource {
   public:
    explicit Resource(FrameAllocator& owner) noexcept : owner_(owner) {}

   private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override {
      return owner_.allocate(bytes, alignment);
    }
    void do_deallocate(void*, std::size_t, std::size_t) noexcept override {}
    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
      return this == &other;
    }

    FrameAllocator& owner_;
  };

  /// The arenas of the slot holding frame `index` (worker_count_ workers, then the shared one).
  [[nodiscard]] detail::FrameArena* row_of(std::uint64_t index) const noexcept;
  void fold_peaks(const detail::FrameArena* row) noexcept;
  void reset_row(detail::FrameArena* row) noexcept;
  [[noreturn]] void throw_exhausted(std::size_t worker, const detail::FrameArena& arena,
                                    std::size_t bytes, std::size_t alignment);

  JobSystem& system_;
  std::size_t worker_count_;
  std::uint32_t frames_;
  /// The memory of every arena: one block aligned to a cache line.
  std::byte* block_ = nullptr;
  std::size_t block_bytes_ = 0;
  /// frames_ rows of worker_count_ + 1 arena descriptors, each on its own cache line.
  std::unique_ptr<detail::FrameArena[]> arenas_;
  /// The row of the current frame; never null. Stored (release) by begin_frame after the row
  /// was reset; loaded (acquire) by allocate.
  std::atomic<detail::FrameArena*> current_row_;
  /// The current frame's index; written by begin_frame only, after current_row_.
  std::atomic<std::uint64_t> frame_index_{0};
  /// Refused allocations (a statistic; relaxed).
  std::atomic<std::uint64_t> exhausted_{0};
  /// Peaks of the frames whose slots were recycled; written by begin_frame only (relaxed),
  /// read by usage, which also looks at the frames still in the ring.
  std::atomic<std::size_t> peak_bytes_{0};
  std::atomic<std::size_t> peak_worker_bytes_{0};
  std::atomic<std::size_t> peak_shared_bytes_{0};
  Resource resource_{*this};
};

}  // namespace fiberjob
