#pragma once
/// \file
/// Waking a suspended wait when its job's stop is requested (sleeps, timed waits, counter
/// waits, and untimed waits on the primitives, of a job spawned with a `std::stop_token`).
/// Internal: users never touch it.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <stop_token>

#include "fiberjob/detail/wait_node.hpp"

namespace fiberjob::detail {

struct StopBlock;

/// The stop side of one wait: lives in a pooled StopBlock that the wait's StopWait takes only
/// when the job's token can be stopped (stop_wake.cpp), so a stoppable wait allocates nothing
/// once the calling thread's cache of blocks is warm, and a wait of a job without a token pays
/// one pointer in its awaiter.
///
/// Protocol (docs/decisions.md, "Stops wake suspended waits"; model in
/// tests/model/timer_model.cpp): whoever removes the node from the primitive owns the wake.
/// * The linker commits under the primitive's lock (the counter's kValueLocked, the wait
///   queue's lock of an Event, Mutex, Semaphore or ConditionVariable, the timer heap's lock
///   for a sleep), before it links: kIdle -> kLinked. A failed commit (the stop came first:
///   kStopped) links nothing; the waiter goes on and throws Cancelled.
/// * The stop callback exchanges kStopped in. Only when it finds kLinked does it call
///   `unlink` (which takes the same lock, so the link is complete); it wakes the node only if
///   that removed it. A signal, set, unlock, release, notify or expiring timer that removed
///   the node first wakes it (and the waiter then holds what that gave it).
/// The waiter destroys the std::stop_callback before it touches anything else: that waits for
/// a callback running on another thread to return ([stopcallback.cons]).
///
/// A counter wait for zero (`unlink` == nullptr, StopWait::arm_counter) is lock-free instead
/// (docs/decisions.md, "A counter wait of a job with a stop token is lock-free"; model
/// `stoppable_wait` in tests/model/counter_model.cpp): the linker commits (kIdle -> kLinked)
/// before it pushes the block's own node (Kind::Stoppable) onto the counter's Treiber list,
/// and the drainer that meets that node and the stop callback each try one claim of kLinked:
/// the drainer's CAS to kWoken, the callback's exchange of kStopped. The winner wakes the
/// waiter's own node (`node`); a node the stop claimed stays on the list as a tombstone, which
/// the drainer skips.
struct StopWake {
  static constexpr std::uint32_t kIdle = 0;     ///< not linked yet, no stop seen
  static constexpr std::uint32_t kLinked = 1;   ///< linked: the callback must unlink (claim)
  static constexpr std::uint32_t kStopped = 2;  ///< the callback ran
  static constexpr std::uint32_t kWoken = 3;    ///< lock-free counter wait: the drainer won

  /// kIdle -> kLinked (the linker's commit, a CAS) or -> kStopped (the callback's exchange);
  /// kLinked -> kWoken (the drainer's claim of a lock-free counter wait, a CAS). All are
  /// read-modify-writes of this one word, so exactly one claimant sees kLinked.
  std::atomic<std::uint32_t> state{kIdle};
  /// Removes `node` from the primitive `object` (under its lock); true when it did. nullptr:
  /// the lock-free counter wait, which removes nothing (the claim decides who wakes).
  bool (*unlink)(void* object, WaitNode& node) noexcept = nullptr;
  /// How the callback wakes a node its `unlink` removed: nullptr = as a signal would
  /// (wake_list); a ConditionVariable's wait hands it to its mutex instead, so the waiter
  /// resumes owning the mutex.
  void (*hand_over)(void* object, WaitNode& node) noexcept = nullptr;
  /// What `unlink` removes the node from: the counter's ValueWaiter, the Event, the sleep's
  /// TimerEntry, or a primitive's StoppableWait. Written before the callback is registered.
  void* object = nullptr;
  /// The waiter's node, set by the linker before its commit.
  WaitNode* node = nullptr;
  /// True once the stop ended the wait instead of the primitive: set by a failed commit (the
  /// linker, which then links nothing) or by the callback when its `unlink` removed the node
  /// (before the wake). Read by the waiter after StopWait::disarm: its own linker's return, or
  /// the wake, orders it before.
  bool cancelled = false;

  /// The linker's commit, under the primitive's lock and before it links `node`: true when the
  /// stop has not come (the linker links), false when it has (the linker links nothing).
  bool commit(WaitNode& waiter) noexcept {
    node = &waiter;
    std::uint32_t expected = kIdle;
    // acq_rel: release publishes `node` to the callback's acquiring exchange; acquire (also
    // on failure) pairs with that exchange's release: the waiter sees the stop.
    if (state.compare_exchange_strong(expected, kLinked, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      return true;
    }
    cancelled = true;
    return false;
  }
  /// The stop callback's body (stop_wake.cpp): unlinks and wakes the node when it was linked.
  void on_stop() noexcept;
};

/// The callable of the std::stop_callback of one wait.
struct StopWakeCall {
  StopWake* wake;  ///< the wait's stop side (lives as long as the callback)
  /// Runs on the thread that requests the stop (or in the registration, if already stopped).
  void operator()() const noexcept { wake->on_stop(); }
};

/// The registration of one wait's StopWake as a std::stop_callback on the job's token, kept
/// out of line in a pooled StopBlock (stop_wake.cpp: a per-thread cache over a shared depot;
/// the global allocator only while the pool grows). Arm it before the wait links (through the
/// linker's commit), disarm it once the wait resumed. Neither copyable nor movable. Holds one
/// pointer: nullptr while not armed.
class StopWait {
 public:
  StopWait() noexcept = default;
  StopWait(const StopWait&) = delete;
  StopWait& operator=(const StopWait&) = delete;
  /// Disarms a wait still armed (one left by an exception or a destroyed coroutine frame).
  ~StopWait() { (void)disarm(); }

  /// Registers a wake on `stop` (a job's token; nullptr: none) when a stop is possible.
  /// \param stop the waiting job's token (it outlives the wait).
  /// \param unlink removes the waiter's node from `object`, under the primitive's lock.
  /// \param object the primitive (or the sleep's timer entry, or a wait's ValueWaiter).
  /// \param hand_over how to wake a node the stop removed (nullptr: as a signal would).
  /// \return the wake to hand the linker, or nullptr when nothing was registered (the wait
  ///   then takes its usual path). Errors: std::bad_alloc when the pool must grow and cannot.
  StopWake* arm(const std::stop_token* stop, bool (*unlink)(void* object, WaitNode& node) noexcept,
                void* object, void (*hand_over)(void* object, WaitNode& node) noexcept = nullptr) {
    if (stop == nullptr || !stop->stop_possible()) return nullptr;
    return arm_block(*stop, unlink, object, hand_over);
  }
  /// Deregisters the callback (waiting for it to return when it runs on another thread) and
  /// gives the block back — for arm_counter's block, first waits for the linker of its node,
  /// and drops this wait's reference (the list's may keep it until a drain). Call after the
  /// wait resumed, before anything else of the wait is touched. \return true when the stop
  /// ended the wait (StopWake::cancelled); false when it did not, or nothing was armed.
  bool disarm() noexcept { return wake_ != nullptr && disarm_block(); }
  /// Registers the stop side of a lock-free counter wait for zero on `stop` (a job's token
  /// whose stop_possible() is true): a block whose own node (StopBlock::list_node) the linker
  /// commits and pushes onto the counter's list, with two references (the list's and this
  /// wait's). \return the wake to commit. Errors: std::bad_alloc as arm.
  StopWake* arm_counter(const std::stop_token& stop);
  /// The armed wake (what arm returned); nullptr when not armed.
  [[nodiscard]] StopWake* armed() const noexcept { return wake_; }

 private:
  StopWake* arm_block(const std::stop_token& stop,
                      bool (*unlink)(void* object, WaitNode& node) noexcept, void* object,
                      void (*hand_over)(void* object, WaitNode& node) noexcept);
  bool disarm_block() noexcept;

  StopWake* wake_ = nullptr;  ///< the armed StopBlock's wake (its base); nullptr: not armed
};

/// How many StopBlocks the process's pool has made so far (it never frees them): constant
/// once the pool covers the waits at once, so a growing figure means blocks that never came
/// back. Thread-safety: any thread (takes the pool's mutex). Suspends: no.
std::size_t stop_blocks_made() noexcept;

/// True when `stop` (a job's token; nullptr: none) can ever be stopped.
inline bool stop_possible(const std::stop_token* stop) noexcept {
  return stop != nullptr && stop->stop_possible();
}

}  // namespace fiberjob::detail
