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
  /// Set by the linker once the waiter is on the counter's list (under the list's lock): a
  /// timed wait for zero that was linked reads the counter after its wake only when the drain
  /// told it to (WaitNode::error_kept); one never linked may (its own call keeps the counter
  /// alive).
  bool linked = false;
};

}  // namespace fiberjob::detail
