#pragma once
// The library's access to a task's await-chain links (TaskPromiseBase's private fields) and the
// walker lock that lets write_diagnostics read other threads' chains (await_chain.cpp).

#include <atomic>
#include <coroutine>

#include "fiberjob/detail/wait_node.hpp"
#include "fiberjob/job_local.hpp"
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
  /// A job's root task's JobRoot: its name and what it waits on (write_diagnostics).
  static const JobRoot& job_root(const TaskPromiseBase& p) noexcept { return p.job_root_; }
};

/// Before a coroutine's wait links `node` (Kind::Coroutine, with coroutine_address and
/// job_locals filled): when the coroutine is the innermost task of the coroutine job that
/// job_locals belongs to, sets node.job_task and records in the job's root what it waits on
/// (`object`, a `what`: JobRoot::waits_on; nullptr for a yield or hop: no wait). Otherwise (a
/// plain job, a foreign coroutine) records nothing. A few loads (the job's chain of tasks)
/// and two relaxed stores. Call only before the link: once linked, the coroutine may run.
/// Inline for the common case, the job's root task waiting itself.
inline void note_task_wait(WaitNode& node, const void* object, const char* what) noexcept;

/// note_task_wait's out-of-line half, for a coroutine that is not its job's root task: walks
/// down the job's chain of tasks to its innermost one.
void note_inner_task_wait(WaitNode& node, JobRoot& root, const void* object,
                          const char* what) noexcept;

/// Records in a coroutine job's root what its innermost task waits on (note_task_wait).
inline void record_task_wait(WaitNode& node, JobRoot& root, const void* object,
                             const char* what) noexcept {
  node.job_task = true;
  root.waits_on_what.store(what, std::memory_order_relaxed);  // relaxed: see JobRoot::waits_on
  root.waits_on.store(object, std::memory_order_relaxed);     // relaxed: see JobRoot::waits_on
}

inline void note_task_wait(WaitNode& node, const void* object, const char* what) noexcept {
  node.job_task = false;
  if (node.job_locals == nullptr) return;
  JobRoot& root = *job_root_of(node.job_locals);
  TaskPromiseBase* const task = root.task;
  if (task == nullptr) return;  // a plain job's root
  // The root task itself waits (it runs, so it awaits no task): it is the innermost one.
  if (std::coroutine_handle<TaskPromiseBase>::from_promise(*task).address() ==
      node.coroutine_address) [[likely]] {
    record_task_wait(node, root, object, what);
    return;
  }
  note_inner_task_wait(node, root, object, what);
}

/// Clears the record note_task_wait made for `node`, if it made one: when the coroutine
/// resumes, or when its wait did not link after all. On the thread that runs the coroutine.
inline void clear_task_wait(const WaitNode& node) noexcept {
  if (!node.job_task) return;
  JobRoot& root = *job_root_of(node.job_locals);
  root.waits_on.store(nullptr, std::memory_order_relaxed);  // relaxed: see JobRoot::waits_on
}

/// Takes the walker lock: while held, no task's frame is freed after being unlinked from its
/// parent (wait_for_await_chain_walkers), so chains reached from a registered root can be read.
/// Held for a walk only (no printing, no suspension). Any thread.
void lock_await_chain_walkers() noexcept;
/// Releases the walker lock.
void unlock_await_chain_walkers() noexcept;

}  // namespace fiberjob::detail
