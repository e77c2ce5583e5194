#pragma once
/// \file
/// The false-sharing distance (destructive interference size) of the target: how far apart
/// two atomics written by different threads must be. Internal: in include/ because the public
/// detail headers align by it too (CoroutineShard).

#include <cstddef>

namespace fiberjob::detail {

/// Bytes that keep two objects written by different threads off one cache line: the alignment of
/// every contended atomic and per-thread block (deque indices, worker and fiber records, the
/// idle event count, free-list heads, the coroutine registry's shards). The one constant for it:
/// code that pads against false sharing uses this, never a literal 64.
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
