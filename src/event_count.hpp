#pragma once
// EventCount: where idle workers sleep without losing a wake-up.
//
// The classic event count (Dmitry Vyukov's eventcount; also folly::EventCount and Eigen's
// EventCount): a waiter announces itself, re-checks for work, then sleeps only if no notify has
// happened since it announced. The announce/check and publish/notify pairs are a Dekker pattern,
// closed by a seq_cst fence on each side.

#include <atomic>
#include <cstdint>

#include "fiberjob/detail/cache_line.hpp"
#include "platform/fence.hpp"
#include "platform/futex.hpp"

namespace fiberjob::detail {

class EventCount {
 public:
  /// Key returned by prepare_wait, passed to commit_wait.
  using Key = std::uint32_t;

  /// Step 1 of sleeping: announce the waiter. The caller must then re-check its condition
  /// (look for work) and call either cancel_wait or commit_wait.
  Key prepare_wait() noexcept {
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    // seq_cst fence: pairs with the fence in notify(); of "waiter announced / work published",
    // at least one side sees the other's write (Dekker).
    seq_cst_fence();
    return epoch_.load(std::memory_order_seq_cst);
  }

  /// The re-check found work: withdraw the announcement.
  void cancel_wait() noexcept { waiters_.fetch_sub(1, std::memory_order_seq_cst); }

  /// The re-check found nothing: sleep until a notify after prepare_wait, or until the
  /// absolute steady_clock time `deadline_ns` (UINT64_MAX: no deadline), whichever is first.
  void commit_wait(Key key, std::uint64_t deadline_ns = UINT64_MAX) noexcept {
    // acquire: pairs with the epoch_ fetch_add (seq_cst, hence release) in notify, so work
    // published before that notify is visible when we look again.
    while (epoch_.load(std::memory_order_acquire) == key) {
      if (deadline_ns == UINT64_MAX) {
        futex_wait(epoch_, key);
      } else if (!futex_wait_until(epoch_, key, deadline_ns)) {
        break;  // the deadline passed: the caller looks at its timers
      }
    }
    waiters_.fetch_sub(1, std::memory_order_seq_cst);
  }

  /// Wakes up to `count` sleeping (or about-to-sleep) waiters. Call after publishing work.
  /// Cost when nobody waits: one fence and one load.
  void notify(int count) noexcept {
    // seq_cst fence: pairs with the fence in prepare_wait (see there).
    seq_cst_fence();
    // relaxed: ordered by the fence above.
    if (waiters_.load(std::memory_order_relaxed) == 0) return;
    epoch_.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(epoch_, count);
  }

  /// Wakes every waiter (shutdown).
  void notify_all() noexcept { notify(kFutexWakeAll); }

  /// Number of announced waiters right now (racy; for tests and heuristics).
  [[nodiscard]] std::uint32_t waiters() const noexcept {
    return waiters_.load(std::memory_order_relaxed);  // relaxed: a statistic, pairs with nothing
  }

 private:
  /// The futex word: bumped (seq_cst) by every notify that found a waiter. commit_wait's
  /// acquire load pairs with that bump.
  alignas(kCacheLineBytes) std::atomic<std::uint32_t> epoch_{0};
  /// Announced sleepers (prepare_wait to commit_wait or cancel_wait), seq_cst RMWs. notify's
  /// relaxed load is ordered by the fence before it, which pairs with prepare_wait's fence.
  alignas(kCacheLineBytes) std::atomic<std::uint32_t> waiters_{0};
};

}  // namespace fiberjob::detail
