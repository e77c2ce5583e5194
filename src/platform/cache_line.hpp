#pragma once
// The false-sharing distance: how far apart two atomics written by different threads must be.

#include <cstddef>

namespace fiberjob::detail {

/// Bytes that keep two objects written by different threads off one cache line: the alignment of
/// every contended atomic and per-thread block in src/ (deque indices, worker and fiber records,
/// the idle event count, free-list heads).
///
/// x86-64: 64, its cache line. aarch64: 128, the largest line in use — Apple's M-series cores
/// have 128-byte lines, Arm's Cortex-A and Neoverse cores 64-byte ones, which 128 covers at the
/// cost of some padding. Not std::hardware_destructive_interference_size: clang 14 does not
/// provide it, and g++ derives it from -mtune (256 on aarch64), so the layout would change with
/// the compiler and its flags.
#if defined(__aarch64__)
inline constexpr std::size_t kCacheLineBytes = 128;
#else
inline constexpr std::size_t kCacheLineBytes = 64;
#endif

}  // namespace fiberjob::detail
