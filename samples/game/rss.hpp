#pragma once
// Resident set size of the process, for the game-frame sample's soak output (--rss-every).

#include <cstdint>

namespace game {

/// Resident set size of this process in KiB: the resident pages of /proc/self/statm times the
/// page size. Returns 0 when the file cannot be read (not Linux).
/// Allocation: none (a stack buffer and three system calls), so the frame loop may call it.
/// Thread-safety: any thread.
std::uint64_t resident_kib() noexcept;

}  // namespace game
