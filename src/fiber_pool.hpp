#pragma once
// FiberPool: every fiber and stack allocated up front; a lock-free free stack hands them out.

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "fiber.hpp"

namespace fiberjob::detail {

/// Entry of every pooled fiber: runs the dispatch loop and returns the continuation to resume
/// when the fiber retires.
using FiberEntry = boost::context::fiber (*)(Fiber* self, boost::context::fiber&& caller);

/// All fibers of one scheduler. Stacks are one mmap region, reserved up front
/// (MAP_NORESERVE: pages cost RSS only once touched), with a 64 KiB PROT_NONE guard below each
/// stack so that an overflow faults instead of corrupting a neighbour (reported by the handler
/// in stack_guard.cpp). Boost.Context fibers are constructed lazily, on first acquire.
///
/// The free list is a Treiber stack of fiber indices whose head packs {tag:43, index+1:21} into
/// one 64-bit word; the tag changes on every push and pop, which stops ABA without a
/// double-width CAS.
class FiberPool {
 public:
  FiberPool(Scheduler& scheduler, std::uint32_t count, std::size_t stack_size, FiberEntry entry);
  ~FiberPool();
  FiberPool(const FiberPool&) = delete;
  FiberPool& operator=(const FiberPool&) = delete;

  /// Takes a free fiber, ready to be switched to (its next act is the dispatch loop), or nullptr
  /// when every fiber is in use. Lock-free; any thread.
  Fiber* acquire();
  /// Returns a fiber whose stack no longer runs (called by the fiber that switched away from it).
  void release(Fiber* fiber) noexcept;

  /// Resumes every started pooled fiber once with `quit` set, so that each returns from its
  /// entry normally (destroying a suspended Boost.Context fiber would unwind it through an
  /// unannotated switch). Call on a plain thread after all workers stopped.
  /// Returns the number of fibers that are not in the pool (still suspended: left unwound).
  std::uint32_t retire_all() noexcept;

  [[nodiscard]] std::uint32_t count() const noexcept { return count_; }
  [[nodiscard]] std::uint32_t in_use() const noexcept {
    return in_use_.load(std::memory_order_relaxed);  // relaxed: a statistic
  }
  [[nodiscard]] std::uint32_t high_water() const noexcept {
    return high_water_.load(std::memory_order_relaxed);  // relaxed: a statistic
  }
  [[nodiscard]] std::size_t stack_size() const noexcept { return stack_size_; }

  /// Calls `fn(fiber)` for every fiber that is suspended right now (diagnostics: racy but
  /// safe, reads only atomics).
  template <class Fn>
  void for_each_suspended(Fn&& fn) const {
    for (std::uint32_t i = 0; i < count_; ++i) {
      if (state_of(fibers_[i]) == FiberState::Suspended) fn(fibers_[i]);
    }
  }

  /// If `address` lies in one of this pool's guard pages, returns the index of the fiber whose
  /// stack overflowed into it, else -1. Async-signal-safe.
  [[nodiscard]] long guard_page_owner(const void* address) const noexcept;

 private:
  void construct_context(Fiber& fiber);
  Fiber& at(std::uint32_t index) noexcept { return fibers_[index]; }

  Scheduler& scheduler_;
  std::uint32_t count_;
  std::size_t stack_size_;
  std::size_t guard_size_;
  FiberEntry entry_;
  unsigned char* region_ = nullptr;
  std::size_t region_size_ = 0;
  Fiber* fibers_ = nullptr;
  /// {tag:43 | (index + 1):21}; 0 in the index bits = empty.
  alignas(64) std::atomic<std::uint64_t> free_head_{0};
  alignas(64) std::atomic<std::uint32_t> in_use_{0};
  std::atomic<std::uint32_t> high_water_{0};
};

}  // namespace fiberjob::detail
