#pragma once
// The plain-code form of a stoppable wait on an Event, Mutex, Semaphore or ConditionVariable
// (fiberjob/detail/stoppable_wait.hpp): the body their blocking calls share.

#include "fiberjob/detail/stoppable_wait.hpp"
#include "fiberjob/detail/wait_queue.hpp"

namespace fiberjob::detail {

/// What block_on_stoppable needs of the primitive: its linker and its stop's unlink (both get
/// the StoppableWait as their object), how the stop wakes a node it removed (nullptr: as the
/// primitive would), the mutex a condition-variable waiter re-acquires (nullptr otherwise),
/// and the names for reports (`what`, as WaitLinker::what) and for Cancelled (`call`).
struct StoppableLinker {
  bool (*link)(void* wait, WaitNode& node) noexcept = nullptr;
  bool (*unlink)(void* wait, WaitNode& node) noexcept = nullptr;
  void (*hand_over)(void* wait, WaitNode& node) noexcept = nullptr;
  void* mutex = nullptr;
  const char* what = nullptr;
  const char* call = nullptr;
};

/// Blocks the calling plain code on `primitive` as block_on does, with a stop side when the
/// calling job's token can be stopped (detail::StoppableWait). Errors: Error (Cancelled) for
/// `linker.call` when the job's stop came before (nothing linked); as block_on.
/// \return how the wait ended; the primitive's finish step passes on what a GiveBack holds.
WaitEnd block_on_stoppable(void* primitive, const StoppableLinker& linker);

}  // namespace fiberjob::detail
