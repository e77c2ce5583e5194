#pragma once
// Linux futex on a 32-bit atomic word (the parking primitive under EventCount and thread waits),
// and the spin-wait steps used before parking or while another thread finishes a short step.

#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <ctime>

namespace fiberjob::detail {

/// Sleeps while `*word == expected`. Returns on a wake, a signal or a spurious wake-up; callers
/// re-check their condition in a loop.
inline void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t expected) noexcept {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, expected,
            nullptr, nullptr, 0);
}

/// futex_wait until the absolute CLOCK_MONOTONIC (std::chrono::steady_clock) time
/// `deadline_ns`. Returns false when the deadline has passed (the kernel said ETIMEDOUT), true
/// on a wake, a signal, a spurious wake-up or a changed word; callers re-check in a loop.
inline bool futex_wait_until(std::atomic<std::uint32_t>& word, std::uint32_t expected,
                             std::uint64_t deadline_ns) noexcept {
  timespec at{};
  at.tv_sec = static_cast<time_t>(deadline_ns / 1'000'000'000u);
  at.tv_nsec = static_cast<long>(deadline_ns % 1'000'000'000u);
  // FUTEX_WAIT_BITSET takes an absolute time (FUTEX_WAIT a relative one), so a deadline needs
  // no clock read here and a retry after a spurious wake-up does not stretch the wait.
  const long rc =
      ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_BITSET_PRIVATE,
                expected, &at, nullptr, FUTEX_BITSET_MATCH_ANY);
  return !(rc == -1 && errno == ETIMEDOUT);
}

/// Wakes up to `count` threads sleeping in futex_wait on `word`. Harmless when the memory of
/// `word` has been reused: at worst a spurious wake-up of an unrelated futex waiter, which every
/// futex user tolerates. So it may be called after the store that lets the waiter leave.
inline void futex_wake(std::atomic<std::uint32_t>& word, int count) noexcept {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, count, nullptr,
            nullptr, 0);
}

inline constexpr int kFutexWakeAll = INT_MAX;

/// One iteration of a spin-wait: tells the CPU we are spinning and waits a few tens of cycles,
/// so a spin of N iterations lasts about as long on every CPU that spins.
/// x86: `pause`. aarch64: `isb`, not `yield`: `yield` is a hint for SMT cores and a no-op on the
/// others (nearly every ARM core), so a spin would re-load at full speed; `isb` stalls the
/// front end until the pipeline drains, a delay close to x86's `pause` (Rust's
/// core::hint::spin_loop made the same choice). Elsewhere: only a compiler barrier.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("isb" ::: "memory");
#else
  asm volatile("" ::: "memory");
#endif
}

/// Spin-waits this many iterations before spin_then_yield gives the CPU away.
inline constexpr int kSpinsBeforeYield = 128;

/// One step of a wait for another thread that only has a few instructions left to do (a lock
/// holder, a drainer, a linker): `spins` counts the steps taken so far, from 0. The first
/// kSpinsBeforeYield steps pause the CPU (cpu_relax); after that the other thread was most
/// likely preempted in the middle of its step, so give the CPU away (sched_yield) to let it run.
inline void spin_then_yield(int spins) noexcept {
  if (spins < kSpinsBeforeYield) {
    cpu_relax();
  } else {
    sched_yield();
  }
}

}  // namespace fiberjob::detail
