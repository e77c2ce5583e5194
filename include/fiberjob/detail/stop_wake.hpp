#pragma once
/// \file
/// Waking a suspended wait when its job's stop is requested (sleeps, timed waits, counter
/// waits of a job spawned with a `std::stop_token`). Internal: users never touch it.

#include <atomic>
#include <cstdint>
#include <optional>
#include <stop_token>

#include "fiberjob/detail/wait_node.hpp"

namespace fiberjob::detail {

/// The stop side of one wait: lives beside the waiter's node (the fiber's stack, the awaiter in
/// the coroutine frame), so a stoppable wait never allocates.
///
/// Protocol (docs/decisions.md, "Stops wake suspended waits"; model in
/// tests/model/timer_model.cpp): whoever removes the node from the primitive owns the wake.
/// * The linker commits under the primitive's lock (the counter's kValueLocked, the event's
///   wait-queue lock, the timer heap's lock for a sleep), before it links: kIdle -> kLinked. A
///   failed commit (the stop came first: kStopped) links nothing; the waiter goes on and
///   throws Cancelled.
/// * The stop callback exchanges kStopped in. Only when it finds kLinked does it call
///   `unlink` (which takes the same lock, so the link is complete); it wakes the node only if
///   that removed it. A signal, set or expiring timer that removed the node first wakes it.
/// The waiter destroys the std::stop_callback before it touches anything else: that waits for
/// a callback running on another thread to return ([stopcallback.cons]).
struct StopWake {
  static constexpr std::uint32_t kIdle = 0;     ///< not linked yet, no stop seen
  static constexpr std::uint32_t kLinked = 1;   ///< linked: the callback must unlink
  static constexpr std::uint32_t kStopped = 2;  ///< the callback ran

  /// kIdle -> kLinked (the linker's commit, a CAS) or -> kStopped (the callback's exchange).
  /// Both are read-modify-writes of this one word, so exactly one of them sees the other.
  std::atomic<std::uint32_t> state{kIdle};
  /// Removes `node` from the primitive `object` (under its lock); true when it did.
  bool (*unlink)(void* object, WaitNode& node) noexcept = nullptr;
  /// What `unlink` removes the node from: the counter's ValueWaiter, the Event, or the
  /// sleep's TimerEntry. Written before the callback is registered.
  void* object = nullptr;
  /// The waiter's node, set by the linker before its commit.
  WaitNode* node = nullptr;

  /// The linker's commit, under the primitive's lock and before it links `node`: true when the
  /// stop has not come (the linker links), false when it has (the linker links nothing).
  bool commit(WaitNode& waiter) noexcept {
    node = &waiter;
    std::uint32_t expected = kIdle;
    // acq_rel: release publishes `node` to the callback's acquiring exchange; acquire (also
    // on failure) pairs with that exchange's release: the waiter sees the stop.
    return state.compare_exchange_strong(expected, kLinked, std::memory_order_acq_rel,
                                         std::memory_order_acquire);
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

/// A StopWake and its registration as a std::stop_callback on the job's token. Arm it before
/// the wait links (through the linker's commit), disarm it once the wait resumed. Neither
/// copyable nor movable (the callback is registered at its address).
class StopWait {
 public:
  StopWait() noexcept = default;
  StopWait(const StopWait&) = delete;
  StopWait& operator=(const StopWait&) = delete;
  ~StopWait() = default;

  /// Registers the wake on `stop` (a job's token; nullptr: none) when a stop is possible.
  /// \param stop the waiting job's token (it outlives the wait).
  /// \param unlink removes the waiter's node from `object`, under the primitive's lock.
  /// \param object the primitive (or the sleep's timer entry).
  /// \return the wake to hand the linker, or nullptr when nothing was registered (the wait
  ///   then takes its usual path).
  StopWake* arm(const std::stop_token* stop, bool (*unlink)(void* object, WaitNode& node) noexcept,
                void* object) noexcept {
    if (stop == nullptr || !stop->stop_possible()) return nullptr;
    wake_.unlink = unlink;
    wake_.object = object;
    callback_.emplace(*stop, StopWakeCall{&wake_});  // runs the callback now if stopped
    return &wake_;
  }
  /// Deregisters the callback; waits for it to return when it runs on another thread. Call
  /// after the wait resumed, before anything else of the wait is touched.
  void disarm() noexcept { callback_.reset(); }

 private:
  StopWake wake_;
  std::optional<std::stop_callback<StopWakeCall>> callback_;  // destroyed before wake_
};

/// True when `stop` (a job's token; nullptr: none) can ever be stopped.
inline bool stop_possible(const std::stop_token* stop) noexcept {
  return stop != nullptr && stop->stop_possible();
}

}  // namespace fiberjob::detail
