// Counter and its wait list: lock-free intrusive Treiber stack, drained in one exchange.
//
// Protocol (memory orders and their pairings in docs/memory_ordering.md):
//   wait:   if value == 0: done. Else (after the waiter stopped running) push the node with an
//           acq_rel CAS, then re-load value; if it is 0, drain the list yourself.
//   signal: CAS value 1 -> kWaking (acq_rel) — the final signaller owns the drain; exchange the
//           list with nullptr (acq_rel); add -kWaking back (release) — its last touch of the
//           counter; then make the drained waiters runnable.
// While value is in the waking range, waiters neither link nor return: they spin the few
// nanoseconds until the drain is over. So the counter may die the moment a waiter sees zero:
// the final signaller never touches it after that.

#include <cstdio>
#include <cstdlib>
#include <string>

#include "counter_access.hpp"
#include "fiberjob/counter.hpp"
#include "fiberjob/error.hpp"
#include "platform/futex.hpp"
#include "worker.hpp"

namespace fiberjob {

using detail::CounterAccess;

namespace {

[[noreturn]] void die(const char* message) noexcept {
  std::fputs(message, stderr);
  std::fflush(stderr);
  std::abort();
}

}  // namespace

Counter::~Counter() {
#ifndef NDEBUG
  // acquire: pairs with the push CAS in CounterAccess::link (a linked node is visible).
  if (waiters_.load(std::memory_order_acquire) != nullptr) {
    die("fiberjob: Counter destroyed while jobs or threads still wait on it; keep the counter "
        "alive until every wait on it has returned.\n");
  }
  // relaxed: a diagnostic; a correct program has no concurrent access here.
  const std::int64_t value = value_.load(std::memory_order_relaxed);
  if (value != 0) {
    die("fiberjob: Counter destroyed while jobs still reference it (count not zero); wait on "
        "the counter before it goes out of scope.\n");
  }
#endif
}

void Counter::add(std::int64_t n) {
  if (n <= 0) {
    throw Error(ErrorCode::CounterMisuse,
                "fiberjob: Counter::add(" + std::to_string(n) + "): the amount must be > 0");
  }
  // relaxed: the unit only has to exist before the job that removes it is queued, and the
  // queue push (release) / pop (acquire) orders that. Pairs with nothing itself.
  const std::int64_t previous = value_.fetch_add(n, std::memory_order_relaxed);
  // relaxed: error_state_ is written by waits that already returned (documented precondition
  // of reuse) or by jobs of this round, which are ordered before us by their signal.
  if (previous == 0 && error_state_.load(std::memory_order_relaxed) == kErrorDelivered) {
    // A new round after a wait delivered the old exception: forget it. (A count that merely
    // touched zero while jobs were still being added keeps an undelivered exception.)
    error_ = nullptr;
    error_state_.store(kNoError, std::memory_order_relaxed);  // relaxed: see above
    dropped_errors_.store(0, std::memory_order_relaxed);      // relaxed: a statistic
  } else if (previous < 0 && !CounterAccess::is_waking(previous)) {
    value_.fetch_sub(n, std::memory_order_relaxed);  // relaxed: undo of the add above
    throw Error(ErrorCode::CounterMisuse,
                "fiberjob: Counter::add on a counter that was signalled more often than added "
                "to (count " +
                    std::to_string(previous) + "); every signal needs a matching add");
  }
}

void Counter::signal() noexcept { CounterAccess::signal(*this, detail::current_worker()); }

bool Counter::done() const noexcept { return CounterAccess::load_settled(*this) == 0; }

std::int64_t Counter::pending() const noexcept {
  const std::int64_t value = CounterAccess::load_settled(*this);
  return value;
}

std::uint32_t Counter::dropped_exceptions() const noexcept {
  return dropped_errors_.load(std::memory_order_relaxed);  // relaxed: a statistic
}

namespace detail {

std::int64_t CounterAccess::load_settled(const Counter& counter) noexcept {
  // acquire: pairs with the release of the final signaller's fetch_sub(kWaking) (and, through
  // the release sequence, with every signaller's CAS): seeing 0 means seeing all job writes.
  std::int64_t value = counter.value_.load(std::memory_order_acquire);
  while (is_waking(value)) {
    cpu_relax();
    value = counter.value_.load(std::memory_order_acquire);  // acquire: as above
  }
  return value;
}

void CounterAccess::link(Counter& counter, WaitNode& node, Worker* current) noexcept {
  // relaxed: only the first guess of the CAS below.
  WaitNode* head = counter.waiters_.load(std::memory_order_relaxed);
  do {
    node.next = head;
    // acq_rel. release: publishes node.next and the waiter's state to the drainer (pairs with
    // the acquire of the drain exchange). acquire: pairs with the release of a drain exchange
    // that came before us in the list's modification order, so the re-check below sees that
    // drainer's kWaking or later — the half of the handshake that closes the lost wake-up.
  } while (!counter.waiters_.compare_exchange_weak(head, &node, std::memory_order_acq_rel,
                                                   std::memory_order_relaxed));
  // Re-check: the count may have reached zero between the waiter's test and the link.
  if (load_settled(counter) != 0) return;
  // acq_rel: as the drain in signal().
  WaitNode* drained = counter.waiters_.exchange(nullptr, std::memory_order_acq_rel);
  wake_list(drained, current);
}

void CounterAccess::signal(Counter& counter, Worker* current) noexcept {
  // relaxed: only the first guess of the CAS below.
  std::int64_t value = counter.value_.load(std::memory_order_relaxed);
  std::int64_t next = 0;
  do {
    if (value > 1 || (is_waking(value) && value > kWaking)) {
      next = value - 1;
    } else if (value == 1) {
      next = kWaking;
    } else {
      die("fiberjob: Counter::signal on a counter with no outstanding unit: it was signalled "
          "more often than jobs were added (a job signalled it by hand?). Every signal needs a "
          "matching add.\n");
    }
    // acq_rel. release: publishes this job's writes (and a captured exception) to the waiters,
    // who acquire the count. acquire: the final signaller must see every earlier job's writes,
    // because it is what makes fiber waiters runnable again.
  } while (!counter.value_.compare_exchange_weak(value, next, std::memory_order_acq_rel,
                                                 std::memory_order_relaxed));
  if (next != kWaking) return;
  // We own the drain. acq_rel. acquire: pairs with the release of every push CAS (we read the
  // nodes). release: pairs with the acquire of a later push CAS (see link()).
  WaitNode* drained = counter.waiters_.exchange(nullptr, std::memory_order_acq_rel);
  // release: pairs with the acquire loads in load_settled. Our last touch of the counter: from
  // here on a waiter may see zero and destroy it.
  counter.value_.fetch_sub(kWaking, std::memory_order_release);
  wake_list(drained, current);
}

void CounterAccess::capture(Counter& counter, std::exception_ptr error) noexcept {
  // relaxed: only elects the one writer of error_; error_ itself is published to waiters by the
  // job's signal (release CAS).
  std::uint32_t state = Counter::kNoError;
  if (counter.error_state_.compare_exchange_strong(state, Counter::kErrorCaptured,
                                                   std::memory_order_relaxed)) {
    counter.error_ = std::move(error);
  } else {
    counter.dropped_errors_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
  }
}

void CounterAccess::rethrow_if_error(Counter& counter) {
  if (!counter.error_) return;
  // relaxed: read only by a later add() on this thread or after this wait returned.
  counter.error_state_.store(Counter::kErrorDelivered, std::memory_order_relaxed);
  std::rethrow_exception(counter.error_);
}

void CounterAccess::wait_on_thread(Counter& counter) noexcept {
  if (load_settled(counter) == 0) return;
  WaitNode node;
  node.kind = WaitNode::Kind::Thread;
  link(counter, node, current_worker());
  // acquire: pairs with the waker's release store of `woken` (wake_list).
  while (node.woken.load(std::memory_order_acquire) == 0) futex_wait(node.woken, 0);
}

}  // namespace detail
}  // namespace fiberjob
