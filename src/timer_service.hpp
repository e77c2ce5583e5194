#pragma once
// The pieces of the timer service that the primitives' linkers use (timer.cpp): arming a timed
// wait's entry under the primitive's lock, and the wake of a parked worker after it.

#include <cstdint>

#include "fiberjob/detail/timer_entry.hpp"

namespace fiberjob::detail {

/// Now, in steady_clock nanoseconds since its epoch (the clock of every deadline).
std::uint64_t steady_now_ns() noexcept;

/// Inserts `entry` into the heap of `entry.scheduler` (which must be set). Returns that
/// scheduler when the entry became its earliest deadline (pass it to notify_timer_armed once
/// the caller's lock is released), else nullptr. Any thread; never suspends.
Scheduler* arm_timer(TimerEntry& entry) noexcept;

/// Wakes a parked worker of `scheduler` so that its park honours a new earliest deadline;
/// nothing for nullptr.
void notify_timer_armed(Scheduler* scheduler) noexcept;

}  // namespace fiberjob::detail
