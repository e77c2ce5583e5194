#pragma once
/// \file
/// The stop side of a wait on an `Event`, `Mutex`, `Semaphore` or `ConditionVariable` in a job
/// spawned with a `std::stop_token`: what makes those waits cancellation points. Internal.

#include <cstdint>
#include <stop_token>

#include "fiberjob/detail/stop_wake.hpp"
#include "fiberjob/detail/wait_node.hpp"

namespace fiberjob::detail {

/// Throws Error (Cancelled) for `call`, a wait or yield of a job whose stop was requested.
[[noreturn]] void throw_cancelled(const char* call);
/// The calling job's stop token (nullptr: none, or not in a job). It lives as long as the job.
const std::stop_token* current_job_stop() noexcept;

/// How a stoppable wait on a primitive ended.
enum class WaitEnd : std::uint8_t {
  Completed,  ///< the primitive let the waiter through and no stop was requested
  Cancelled,  ///< the stop ended the wait: the waiter holds nothing; it throws Cancelled
  GiveBack,   ///< the primitive let it through (a permit, the lock, a set, a notify) but the
              ///< stop was requested: the waiter passes that on, then throws Cancelled
};

/// One wait on a primitive, as its linker's object (`primitive` is the Event, Mutex, Semaphore
/// or ConditionVariable): the linker commits wake() under the primitive's lock before it
/// links (StopWake's protocol), or, when the commit fails, links nothing and takes nothing.
/// Lives where the waiter's node lives (the fiber's stack, the awaiter in the coroutine
/// frame): 32 bytes. Neither copyable nor movable.
class StoppableWait {
 public:
  StoppableWait() noexcept = default;
  StoppableWait(const StoppableWait&) = delete;
  StoppableWait& operator=(const StoppableWait&) = delete;
  ~StoppableWait() = default;

  /// Before the wait links. \param stop the waiting job's token (nullptr: none).
  /// \param object the primitive. \param unlink removes a node from the primitive (its
  /// argument is this StoppableWait). \param hand_over how the stop wakes a node it removed
  /// (nullptr: as the primitive's wake would).
  /// \return false when the stop was requested already: the wait must not begin (the waiter
  ///   throws Cancelled; end() then says Cancelled). Errors: std::bad_alloc as StopWait::arm.
  bool begin(const std::stop_token* stop, void* object,
             bool (*unlink)(void* object, WaitNode& node) noexcept,
             void (*hand_over)(void* object, WaitNode& node) noexcept = nullptr) {
    primitive = object;
    if (stop != nullptr && stop->stop_requested()) {
      phase_ = Phase::StoppedBefore;
      return false;
    }
    phase_ = Phase::Begun;
    (void)wait_.arm(stop, unlink, this, hand_over);
    return true;
  }
  /// The wake the linker commits (nullptr: the job cannot be stopped, or not begun).
  [[nodiscard]] StopWake* wake() const noexcept { return wait_.armed(); }
  /// After the wait resumed (or after await_ready let it through: then Completed): disarms
  /// first (waits for a callback still running elsewhere), then says how the wait ended. Reads
  /// the job's token again: a resumed coroutine's fiber carries its job's token.
  WaitEnd end() noexcept {
    if (phase_ == Phase::Idle) return WaitEnd::Completed;
    if (wait_.disarm() || phase_ == Phase::StoppedBefore) return WaitEnd::Cancelled;
    const std::stop_token* stop = current_job_stop();
    return stop != nullptr && stop->stop_requested() ? WaitEnd::GiveBack : WaitEnd::Completed;
  }

  void* primitive = nullptr;  ///< the primitive waited on
  void* mutex = nullptr;      ///< a ConditionVariable's wait: the mutex it re-acquires

 private:
  enum class Phase : std::uint8_t { Idle, Begun, StoppedBefore };
  StopWait wait_;
  Phase phase_ = Phase::Idle;
};

}  // namespace fiberjob::detail
