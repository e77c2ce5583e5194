#pragma once
// The library's access to a task's await-chain links (TaskPromiseBase's private fields) and the
// walker lock that lets write_diagnostics read other threads' chains (await_chain.cpp).

#include <atomic>

#include "fiberjob/task.hpp"

namespace fiberjob::detail {

/// Reads a promise's chain fields for the chain walkers (a friend of TaskPromiseBase).
class AwaitChainAccess {
 public:
  static const void* code(const TaskPromiseBase& p) noexcept { return p.code_; }
  static const void* awaited_at(const TaskPromiseBase& p) noexcept { return p.awaited_at_; }
  static const TaskPromiseBase* awaited_by(const TaskPromiseBase& p) noexcept {
    return p.awaited_by_;
  }
  /// The task `p` awaits, or nullptr. acquire: pairs with the release store in Task's
  /// Awaiter::await_suspend: that task's code_ and awaited_at_ are seen.
  static const TaskPromiseBase* awaiting(const TaskPromiseBase& p) noexcept {
    return p.awaiting_.load(std::memory_order_acquire);
  }
  /// The job system of a job's root task (nullptr for other tasks).
  static const Scheduler* scheduler(const TaskPromiseBase& p) noexcept { return p.job_scheduler_; }
};

/// Takes the walker lock: while held, no task's frame is freed after being unlinked from its
/// parent (wait_for_await_chain_walkers), so chains reached from a registered root can be read.
/// Held for a walk only (no printing, no suspension). Any thread.
void lock_await_chain_walkers() noexcept;
/// Releases the walker lock.
void unlock_await_chain_walkers() noexcept;

}  // namespace fiberjob::detail
