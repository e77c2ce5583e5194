#pragma once
// The join of a counter destroyed with units pending (counter_join.cpp): its one-time notice.

#include <cstdint>

namespace fiberjob::detail {

/// Sets how long a join (join_pending) waits before its one-time stderr notice (5000 ms by
/// default) and lets the notice be written once more. For tests; call it while no join runs.
/// Thread-safety: any thread. Suspends: no.
/// \param after_ms the wait before the notice, in milliseconds.
/// \return the previous setting, in milliseconds.
std::uint32_t set_join_notice_after_ms(std::uint32_t after_ms) noexcept;

}  // namespace fiberjob::detail
