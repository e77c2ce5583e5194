#pragma once
/// \file
/// The entry of a counter's list of value waiters. Internal: users never touch it.

#include <cstdint>

#include "fiberjob/detail/stop_wake.hpp"
#include "fiberjob/detail/timer_entry.hpp"
#include "fiberjob/detail/wait_node.hpp"

namespace fiberjob {
class Counter;
}  // namespace fiberjob

namespace fiberjob::detail {

/// One wait for a value: lives where the waiter lives (the waiting fiber's stack, the
/// coroutine frame, the parked thread's stack) and is linked into the counter's list of value
/// waiters (Counter::value_waiters_). A job's stoppable wait for zero goes through this list
/// too (target 0), because a node can leave it before the count is met. Internal.
struct ValueWaiter {
  Counter* counter = nullptr;
  std::int64_t target = 0;
  WaitNode* node = nullptr;     ///< The waiter's node, set by the linker.
  ValueWaiter* next = nullptr;  ///< Next in the counter's list (owned by the list's lock).
  /// A timed wait's timer, armed by the linker under the list's lock (nullptr: none).
  TimerEntry* timer = nullptr;
  /// The wait's stop wake, committed by the linker under the list's lock (nullptr: none).
  StopWake* stop = nullptr;
};

}  // namespace fiberjob::detail
