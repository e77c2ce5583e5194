#pragma once
/// \file
/// The one exception type fiberjob throws for misuse and resource exhaustion.

#include <stdexcept>
#include <string>

namespace fiberjob {

/// What went wrong, so callers and tests can tell errors apart without parsing messages.
enum class ErrorCode {
  InvalidConfig,            ///< A `Config` field is out of range; the message names the field.
  NotOnFiber,               ///< A fiber-only call was made from a plain thread.
  FiberPoolExhausted,       ///< A wait or yield needs a fiber and `Config::max_fiber_count` are in
                            ///< use (or the OS refused more stacks); the message names the field.
  CounterMisuse,            ///< `Counter::add` with an amount <= 0 or on an over-signalled counter,
                            ///< or a job waits on the counter that its own end signals.
  FrameAllocatorExhausted,  ///< A `FrameAllocator` arena cannot fit a request this frame; the
                            ///< message names the `FrameAllocatorConfig` field to raise.
  AttachMisuse,       ///< `AttachedWorker`: no free slot (raise `Config::attachable_threads`), or
                      ///< the thread is a worker already (a worker thread, a job, or attached).
  InvalidArgument,    ///< A call's argument is out of its range; the message names it (e.g. a
                      ///< `parallel_for` bound that does not fit the loop's index type).
  SyncMisuse,         ///< A `Mutex` locked again by its owner, a `ConditionVariable` waited on
                      ///< without owning its mutex, a `Semaphore` released past its maximum.
  BlockingCallInJob,  ///< A call that blocks its thread (`sync_wait`) was made from a job; the
                      ///< message names the suspending call to use instead.
  Cancelled,          ///< A wait or yield in a job whose stop token had a stop requested (the job
                      ///< was spawned with a `std::stop_token`): the job unwinds.
};

/// Thrown by fiberjob when the API is misused or a configured resource runs out.
/// The message names the mistake and the fix (usually a `Config` field or an alternative call).
/// Thread-safety: an ordinary exception object; copyable, immutable after construction.
class Error : public std::runtime_error {
 public:
  /// Creates an error with its category and a message that names the mistake and the fix.
  /// \param code the category.
  /// \param message what went wrong and how to fix it (returned by `what()`).
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}

  /// The category of the error.
  /// \return the code given at construction.
  [[nodiscard]] ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace fiberjob
