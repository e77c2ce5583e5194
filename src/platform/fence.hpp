#pragma once
// The sequentially consistent fence of the library's StoreLoad points (the work-stealing
// deque's pop and steal, the event count's prepare/notify, the fiber pool's and the class
// waits' Dekker-style checks), at the price of one locked instruction on x86-64.

#include <atomic>

#include "sanitizer.hpp"

namespace fiberjob::detail {

/// `std::atomic_thread_fence(std::memory_order_seq_cst)`, with the same meaning in the C++
/// memory model; it pairs with whatever the call site's comment names. On x86-64 it is a
/// locked `or` of zero into the word at the stack pointer, as g++ compiles the standard fence
/// and as Linux's smp_mb() does: clang 14 compiles the standard fence to `mfence`, which waits
/// for more (non-temporal stores and write-combining memory, which the library never uses)
/// and made fib(32) on one worker 1.45x slower (2026-12-05, 2-vCPU AMD EPYC VM, 21 paired
/// runs of g++'s binary with its 51 locked `or`s patched to `mfence`). Under ThreadSanitizer,
/// and on other architectures (aarch64: `dmb ish`, which qemu-user also translates to a full
/// barrier: docs/reliability.md), the standard fence.
/// Thread-safety: any thread. Never suspends, never throws.
[[gnu::always_inline]] inline void seq_cst_fence() noexcept {
#if defined(__x86_64__) && !defined(FIBERJOB_TSAN)
  // The "memory" clobber makes it a compiler barrier too: no access moves across it.
  asm volatile("lock orq $0, (%%rsp)" ::: "memory", "cc");
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

}  // namespace fiberjob::detail
