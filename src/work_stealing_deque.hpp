// Chase-Lev work-stealing deque (internal component of fiberjob).
//
// Algorithm: N. M. Lê, A. Pop, A. Cohen, F. Zappa Nardelli, "Correct and Efficient Work-Stealing
// for Weak Memory Models", PPoPP 2013 (doi:10.1145/2442516.2442524), Figure 1, which is the
// C11-atomics formulation of D. Chase and Y. Lev, "Dynamic Circular Work-Stealing Deque",
// SPAA 2005.
//
// One owner thread pushes and pops at the bottom (LIFO); any number of thieves steal from the top
// (FIFO). Indices are signed 64-bit and never wrap in practice (2^63 pushes).
//
// Departures from the paper. Each is also flagged with "DEPARTURE" where it occurs:
//   1. push(): "release fence; relaxed store of bottom" becomes a release store of bottom_.
//      ThreadSanitizer ignores stand-alone fences, so only the store makes the item's publication
//      visible to it.
//   2. pop(): the store of bottom_ is release and the load of top_ acquire, not relaxed; the
//      seq_cst fence between them is the paper's. Release: since C++20 a release sequence no
//      longer continues through the same thread's later plain stores, so a thief that reads the
//      decremented bottom_ synchronizes with the owner only through this store. Acquire: pop()
//      refreshes the owner's copy of top_ (top_seen_) that push() relies on.
//   3. steal(): the paper's memory_order_consume load of the array becomes an acquire load
//      (compilers implement consume as acquire anyway).
// The StoreLoad order in pop() is the seq_cst fence between the store of bottom_ and the load of
// top_, and in steal() the seq_cst fence between the loads of top_ and bottom_, exactly as in
// Figure 1: the two fences are ordered in the single total order S, so the owner and a thief
// cannot both miss each other's update when they race for the same item. Fences, not seq_cst
// accesses: C++ orders a seq_cst store and a later seq_cst load, and ARMv8 keeps stlr then
// ldar in order, but qemu-user on an x86-64 host translates that pair with no barrier between
// them, so the aarch64 tests under qemu took an item twice; a fence is a dmb, which qemu
// translates to a full barrier (docs/reliability.md, "aarch64 under qemu-user"). The CAS on
// top_ is seq_cst (relaxed on failure) as in the paper.
//
// Growth: when the ring is full, push() allocates a ring twice the size, copies the live items and
// publishes it with a release store. Retired rings stay alive until the deque is destroyed, since
// a thief may still be reading from one; their total size is less than the current ring's.

#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "fiberjob/detail/cache_line.hpp"
#include "platform/fence.hpp"

namespace fiberjob::detail {

/// A single-owner, multi-thief, growable work-stealing deque of non-zero pointer-sized items.
/// The owner pushes and pops at the bottom (LIFO, cache-warm); thieves steal from the top (FIFO).
/// Items are std::uintptr_t values, typically a pointer or tagged pointer; 0 means "nothing" and
/// must not be pushed. The deque does not own what items point to.
/// Thread-safety: push() and pop() only from the one owner thread (ownership may be handed to
///   another thread only with external synchronization); steal(), empty() and size_approx() from
///   any thread, concurrently. Construction and destruction must not race with any other call.
/// Complexity: O(1) per operation, except a push() that grows the ring (O(size)).
/// Allocation: one ring of `capacity` slots (sizeof(std::uintptr_t) bytes each, 8 on 64-bit
///   targets); push() allocates only when the ring is full. Retired rings (fewer slots in total
///   than the current ring) are kept until destruction. The capacity never shrinks.
class WorkStealingDeque {
 public:
  /// Creates an empty deque whose ring holds `initial_capacity` items (a count of items, not
  /// bytes), rounded up to a power of two, at least 2 and at most 2^62.
  /// Thread-safety: the new deque is not shared yet; publish it to thieves by any synchronizing
  ///   means (e.g. starting the threads after construction).
  /// Complexity: O(initial_capacity).
  /// Allocation: one ring of the rounded capacity (8 bytes per item on 64-bit targets) plus a
  ///   small bookkeeping vector. Throws std::bad_alloc if that fails.
  explicit WorkStealingDeque(std::int64_t initial_capacity = 1024)
      : rings_(make_initial_rings(initial_capacity)), top_(0), bottom_(0), ring_(rings_[0].get()) {}

  /// Frees the current ring and every retired ring. Items still in the deque are dropped; what
  /// they point to is not touched.
  /// Thread-safety: must not race with any other call on this deque.
  /// Complexity: O(number of rings), at most 62 (no per-item work).
  /// Allocation: frees all rings; allocates nothing.
  ~WorkStealingDeque() = default;

  WorkStealingDeque(const WorkStealingDeque&) = delete;
  WorkStealingDeque& operator=(const WorkStealingDeque&) = delete;

  /// Adds `item` (must be non-zero) at the bottom, where pop() takes it next.
  /// Thread-safety: owner thread only; may run concurrently with steal() on other threads.
  /// Complexity: O(1) amortized; O(size_approx()) when the ring is full and grows.
  /// Allocation: none unless the ring is full; then a ring of twice the capacity (in items) is
  ///   allocated, the live items are copied, and the old ring is retired until destruction.
  /// Errors: std::bad_alloc if that allocation fails, std::length_error if the capacity would
  ///   exceed 2^62 items; in both cases the deque is unchanged (strong guarantee).
  void push(std::uintptr_t item) {
    // relaxed: pairs with nothing; only the owner writes bottom_, so it reads its own last store.
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    // relaxed: pairs with nothing; only the owner writes ring_, so it reads its own last store.
    Ring* ring = ring_.load(std::memory_order_relaxed);
    // The owner's copy of top_ (top_seen_): top_ only grows, so a stale copy only understates
    // the free space. top_ itself is read only when the copy says "full": a thief's CAS on it
    // would otherwise cost every push a cache miss while thieves are stealing.
    if (b - top_seen_ > ring->capacity() - 1) [[unlikely]] {
      // acquire: pairs with the seq_cst (release) CAS on top_ in steal(), so a thief's read of
      // slot t happens before this thread overwrites that slot after the ring wraps around (and,
      // by program order, before every later overwrite that this value of top_ allows).
      top_seen_ = top_.load(std::memory_order_acquire);
      if (b - top_seen_ > ring->capacity() - 1) ring = grow(ring, top_seen_, b);
    }
    // relaxed: pairs with nothing itself; the release store of bottom_ just below publishes it to
    // the acquire load of bottom_ in steal().
    ring->slot(b).store(item, std::memory_order_relaxed);
    // DEPARTURE 1: the paper has a release fence followed by a relaxed store of bottom.
    // release: pairs with the acquire load of bottom_ in steal(), making the slot store
    // above (and, after growth, the new ring) visible to a thief that sees b + 1.
    bottom_.store(b + 1, std::memory_order_release);
  }

  /// Removes and returns the most recently pushed item (LIFO), or 0 if the deque is empty or a
  /// concurrent steal() took the last item first.
  /// Thread-safety: owner thread only; may run concurrently with steal() on other threads.
  /// Complexity: O(1), wait-free (at most one CAS, only when one item is left).
  /// Allocation: none.
  std::uintptr_t pop() noexcept {
    // relaxed: pairs with nothing; only the owner writes bottom_, so it reads its own last store.
    const std::int64_t b = bottom_.load(std::memory_order_relaxed) - 1;
    // relaxed: pairs with nothing; only the owner writes ring_, so it reads its own last store.
    Ring* const ring = ring_.load(std::memory_order_relaxed);
    // DEPARTURE 2: the paper's store of bottom is relaxed.
    // release: pairs with the acquire load of bottom_ in steal(): a thief that reads this value
    // sees the slots that push() stored before it.
    bottom_.store(b, std::memory_order_release);
    // StoreLoad (the paper's fence): pairs with the seq_cst fence in steal(). The two fences are
    // ordered in S, so either that thief's load of bottom_ sees the store above, or the load of
    // top_ below sees at least the top_ the thief read before its fence: an item this pop() takes
    // without a CAS is never one that thief can claim.
    seq_cst_fence();
    // DEPARTURE 2: the paper's load of top is relaxed.
    // acquire: pairs with the seq_cst (release) CAS on top_ in steal(), as push()'s refresh of
    // top_seen_ does: a thief's read of slot t happens before the owner reuses that slot.
    std::int64_t t = top_.load(std::memory_order_acquire);
    top_seen_ = t;
    if (t > b) {
      // Empty deque: undo the decrement.
      // relaxed (as in the paper): pairs with nothing; it restores the value that the release
      // store in push() already published, and top_ >= b + 1 now, so a thief reading it takes
      // nothing from it.
      bottom_.store(b + 1, std::memory_order_relaxed);
      return 0;
    }
    // relaxed: pairs with nothing; this thread wrote the slot itself in push().
    std::uintptr_t item = ring->slot(b).load(std::memory_order_relaxed);
    if (t == b) {
      // Single last item: race the thieves for it on top_. seq_cst on success, as in the paper.
      // relaxed on failure, as in the paper: pairs with nothing; a failure only means a thief
      // took the item, and the value it reads is not used.
      if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
        item = 0;  // A thief won.
      }
      // relaxed (as in the paper): pairs with nothing; top_ is t + 1 = b + 1 now, so this
      // restored value lets no thief take anything.
      bottom_.store(b + 1, std::memory_order_relaxed);
    }
    return item;
  }

  /// Returns the item pop() would take next, without removing it, or 0 if the deque looks
  /// empty. A concurrent steal() may take that item right after; pop() then returns 0 (the item
  /// was the last one), never another item than the one seen here, unless the owner pushed in
  /// between.
  /// Thread-safety: owner thread only. Complexity: O(1), no atomic read-modify-write.
  /// Allocation: none.
  std::uintptr_t peek() const noexcept {
    // relaxed: pairs with nothing; only the owner writes bottom_ and ring_ (its own stores).
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    // The owner's copy of top_ (no load of the thieves' line): a stale one only makes us report
    // an item a thief has taken, which the following pop() detects (it orders itself against
    // the thieves, and refreshes the copy).
    if (top_seen_ >= b) return 0;
    // relaxed: the owner wrote this slot itself in push().
    return ring_.load(std::memory_order_relaxed)->slot(b - 1).load(std::memory_order_relaxed);
  }

  /// peek() of a deque the owner just saw non-empty (`!empty_for_owner()`): the item pop()
  /// would take next, without the emptiness test again (relaxed atomics are not merged).
  /// Thread-safety: owner thread only. Complexity: O(1). Allocation: none.
  std::uintptr_t peek_occupied() const noexcept {
    // relaxed: as in peek(), the owner's own stores.
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    return ring_.load(std::memory_order_relaxed)->slot(b - 1).load(std::memory_order_relaxed);
  }

  /// Removes and returns the least recently pushed item (FIFO), or 0 if the deque is empty or
  /// this call lost a race for the top item to pop() or another steal(); the caller may retry.
  /// Thread-safety: any thread, concurrently with everything except construction/destruction.
  /// Complexity: O(1), one CAS; a lost race returns 0 rather than retrying, so it never spins.
  /// Allocation: none.
  std::uintptr_t steal() noexcept {
    // acquire (as in the paper): pairs with the seq_cst (release) CAS on top_ by pop() or another
    // thief, so this thief reads slots no older than the claims it sees.
    std::int64_t t = top_.load(std::memory_order_acquire);
    // Pairs with the seq_cst fence in pop() (see there): orders the load of top_ above before the
    // load of bottom_ below in S.
    seq_cst_fence();
    // acquire (as in the paper): pairs with the release store of bottom_ in push() (or in pop()),
    // making the slot stored before it visible.
    const std::int64_t b = bottom_.load(std::memory_order_acquire);
    if (t >= b) {
      return 0;
    }
    // DEPARTURE 3: the paper loads the array with memory_order_consume.
    // acquire: pairs with the release store of ring_ in grow(), so the copied slots of a new ring
    // are visible before they are read.
    Ring* const ring = ring_.load(std::memory_order_acquire);
    // relaxed: ordered after push()'s slot store by the release store of bottom_ in push() (or a
    // later release store in pop()), which the acquire load of bottom_ above reads; a stale read
    // is discarded by the failing CAS.
    const std::uintptr_t item = ring->slot(t).load(std::memory_order_relaxed);
    // Claim index t. seq_cst on success, as in the paper; its release half pairs with the acquire
    // load of top_ in push(), so the slot read above happens before the owner reuses the slot.
    // relaxed on failure, as in the paper: pairs with nothing; a failure only means the owner or
    // another thief took index t, and the value it reads is not used.
    if (!top_.compare_exchange_strong(t, t + 1, std::memory_order_seq_cst,
                                      std::memory_order_relaxed)) {
      return 0;  // Lost the race.
    }
    return item;
  }

  /// Owner thread only, and only while no other thread may call steal() or pop() on this deque
  /// (a worker alone in its system): removes and returns the least recently pushed item (FIFO),
  /// or 0 if the deque is empty. steal() claims the top item with a CAS because a thief may race
  /// for it; with no other taker there is no race, so plain loads and stores do.
  /// Complexity: O(1), no atomic read-modify-write. Allocation: none.
  std::uintptr_t take_oldest_unshared() noexcept {
    // relaxed: pairs with nothing; by the precondition only this thread writes top_ and
    // bottom_ (other threads may only read sizes, for diagnostics).
    const std::int64_t t = top_.load(std::memory_order_relaxed);
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);  // relaxed: as above
    if (t >= b) return 0;
    // relaxed: the owner wrote this slot itself in push().
    const std::uintptr_t item =
        ring_.load(std::memory_order_relaxed)->slot(t).load(std::memory_order_relaxed);
    top_.store(t + 1, std::memory_order_relaxed);  // relaxed: as above
    top_seen_ = t + 1;
    return item;
  }

  /// Owner thread only: false when the deque may hold an item, true when it is empty. Reads
  /// only the owner's own line (bottom_ and its copy of top_), so it costs no cache miss while
  /// thieves steal; it may say "not empty" after thieves took everything, and the pop() that
  /// follows then returns 0 (and refreshes the copy). Complexity: O(1). Allocation: none.
  bool empty_for_owner() const noexcept {
    // relaxed: pairs with nothing; only the owner writes bottom_.
    return bottom_.load(std::memory_order_relaxed) <= top_seen_;
  }

  /// Returns whether size_approx() is 0: exact when no other thread is using the deque, otherwise
  /// only a hint that may be stale (or briefly wrong) by the time it is used.
  /// Thread-safety: any thread. Complexity: O(1). Allocation: none.
  bool empty() const noexcept { return size_approx() == 0; }

  /// Returns the number of items (a count, not bytes) in the deque, never negative: exact when no
  /// other thread is using the deque, otherwise a hint read from two independent loads.
  /// Thread-safety: any thread. Complexity: O(1). Allocation: none.
  std::int64_t size_approx() const noexcept {
    // relaxed: pairs with nothing; a heuristic snapshot that reads no slot, so nothing needs to
    // become visible through it.
    const std::int64_t b = bottom_.load(std::memory_order_relaxed);
    // relaxed: pairs with nothing (same reason as the load of bottom_ above).
    const std::int64_t t = top_.load(std::memory_order_relaxed);
    return b > t ? b - t : 0;
  }

 private:
  static constexpr std::int64_t kMinCapacity = 2;                      // items
  static constexpr std::int64_t kMaxCapacity = std::int64_t{1} << 62;  // items

  static_assert(std::atomic<std::int64_t>::is_always_lock_free);
  static_assert(std::atomic<std::uintptr_t>::is_always_lock_free);

  // A fixed-size ring of atomic slots; index i lives in slot i mod capacity.
  class Ring {
   public:
    explicit Ring(std::int64_t capacity)
        : capacity_(capacity),
          mask_(capacity - 1),
          slots_(
              std::make_unique<std::atomic<std::uintptr_t>[]>(static_cast<std::size_t>(capacity))) {
    }

    std::int64_t capacity() const noexcept { return capacity_; }

    std::atomic<std::uintptr_t>& slot(std::int64_t index) noexcept {
      return slots_[static_cast<std::size_t>(index & mask_)];
    }

   private:
    const std::int64_t capacity_;  // items; a power of two
    const std::int64_t mask_;      // capacity_ - 1
    std::unique_ptr<std::atomic<std::uintptr_t>[]> slots_;
  };

  static std::vector<std::unique_ptr<Ring>> make_initial_rings(std::int64_t requested) {
    std::vector<std::unique_ptr<Ring>> rings;
    rings.push_back(std::make_unique<Ring>(round_capacity(requested)));
    return rings;
  }

  static std::int64_t round_capacity(std::int64_t requested) noexcept {
    if (requested <= kMinCapacity) {
      return kMinCapacity;
    }
    if (requested >= kMaxCapacity) {
      return kMaxCapacity;
    }
    return static_cast<std::int64_t>(std::bit_ceil(static_cast<std::uint64_t>(requested)));
  }

  // Owner only. Replaces `old_ring` (full, holding indices [t, b)) with a ring of twice the
  // capacity and returns it. Strong exception guarantee.
  [[gnu::noinline]] Ring* grow(Ring* old_ring, std::int64_t t, std::int64_t b) {
    if (old_ring->capacity() >= kMaxCapacity) {
      throw std::length_error("fiberjob::detail::WorkStealingDeque: capacity limit reached");
    }
    rings_.reserve(rings_.size() + 1);  // may throw; nothing has changed yet
    auto new_ring = std::make_unique<Ring>(old_ring->capacity() * 2);
    for (std::int64_t i = t; i < b; ++i) {
      // relaxed (both): pairs with nothing; the owner wrote these slots itself, and the release
      // store of ring_ below publishes the copies to thieves.
      new_ring->slot(i).store(old_ring->slot(i).load(std::memory_order_relaxed),
                              std::memory_order_relaxed);
    }
    Ring* const result = new_ring.get();
    rings_.push_back(std::move(new_ring));  // cannot throw after reserve()
    // release: pairs with the acquire load of ring_ in steal(), so a thief that sees the new ring
    // also sees the copied slots.
    ring_.store(result, std::memory_order_release);
    return result;
  }

  // Every ring ever allocated, oldest first; the last is the current one. Read and written by
  // the owner only (and the destructor); thieves reach rings only through ring_.
  std::vector<std::unique_ptr<Ring>> rings_;

  // The items live at indices [top_, bottom_), slot i of the ring holding index i. Each atomic
  // has its own cache line so the owner (bottom_) and thieves (top_) do not false-share.
  //
  // top_: index of the oldest item, the next one to steal. Only increases, by one, through a
  //   successful CAS in steal() or in pop() (when pop() takes the last item).
  alignas(kCacheLineBytes) std::atomic<std::int64_t> top_;
  // bottom_: one past the newest item, where push() writes next. Written only by the owner:
  //   +1 in push(); in pop() first -1 (claiming index bottom_ - 1), then back +1 if the deque
  //   was empty or the claimed index was the last item. top_ <= bottom_ except during that
  //   window, when bottom_ may be top_ - 1; a thief treats top_ >= bottom_ as empty.
  alignas(kCacheLineBytes) std::atomic<std::int64_t> bottom_;
  // top_seen_: the owner's last reading of top_ (owner only, plain). top_seen_ <= top_ always,
  //   since top_ only grows; push() and pop() refresh it. On bottom_'s line, which the owner
  //   writes anyway.
  std::int64_t top_seen_ = 0;
  // ring_: the current ring, rings_.back(); never null. Written only by the owner, in grow().
  alignas(kCacheLineBytes) std::atomic<Ring*> ring_;
};

}  // namespace fiberjob::detail
