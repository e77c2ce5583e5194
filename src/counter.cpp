// Counter and its wait list: lock-free intrusive Treiber stack, drained in one exchange.
//
// Protocol (memory orders and their pairings in docs/memory_ordering.md):
//   wait:   if value == 0: done. Else (after the waiter stopped running) push the node with an
//           acq_rel CAS, then re-load value; if it is 0, drain the list yourself.
//   signal: CAS value 1 -> kWaking (acq_rel) — the final signaller owns the drain; exchange the
//           list with nullptr (acq_rel); add -kWaking back (release) — its last touch of the
//           counter; then make the drained waiters runnable.
// While value is in the waking range, waiters neither link nor return: they spin the few
// nanoseconds until the drain is over. So the final signaller never touches the counter once a
// waiter can see zero, and a waiter's own link is over before its wait returns (`linking`);
// another waiter's link may still be running, hence the rule that a counter dies (or is
// reused) only once every wait on it returned (counter.hpp), checked in debug builds.

#include <sched.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "counter_wait_list.hpp"
#include "fiberjob/counter.hpp"
#include "fiberjob/detail/die.hpp"
#include "fiberjob/error.hpp"
#include "platform/futex.hpp"
#include "worker.hpp"

namespace fiberjob {

using detail::CounterWaitList;

namespace {

/// The debug-only checks of the lifetime rules (Counter::linkers_): on when the library is
/// built with assertions.
#if defined(NDEBUG)
constexpr bool kCheckLinkers = false;
#else
constexpr bool kCheckLinkers = true;
#endif

/// Applies what the calling worker still holds for `counter` (Worker::deferred_counter, and
/// with `links` also deferred_link_counter), so that code that signalled it and has not
/// suspended since sees its own signals: a coroutine of a wake chain's chunk that signals a
/// counter and then reads it, or destroys it, must not find its signal still pending. Returns
/// true if anything was applied. Called only when the count is not zero, off the fast paths.
/// done() and pending() leave the held waits alone: applying them cannot change the count,
/// and await_ready calls done(), so it would undo the combining of a chunk's waits.
bool apply_own_deferred(const Counter& counter, bool links) noexcept {
  detail::Worker* worker = detail::current_worker();
  if (worker == nullptr) return false;
  bool applied = false;
  if (links && worker->deferred_link_counter == &counter) {  // a wait on it: misuse if dying
    detail::apply_deferred_links(*worker);
    applied = true;
  }
  if (worker->deferred_counter == &counter) {
    detail::apply_deferred_signals(*worker);
    applied = true;
  }
  return applied;
}

}  // namespace

// Out of line and cold: the destructor of an idle counter stays two loads and two tests.
void CounterWaitList::destroy_busy(Counter& counter) noexcept {
  // Units pending (a scope left by an exception before its wait): join them first, so no job
  // touches a dead counter (counter_join.cpp). Signals this thread made but has not applied yet
  // are not pending: apply them first.
  if (CounterWaitList::load_settled(counter) != 0) {
    if (!apply_own_deferred(counter, /*links=*/true) ||
        CounterWaitList::load_settled(counter) != 0) {
      detail::join_pending(counter);
    }
  }
  // acquire: pairs with the push CAS in CounterWaitList::link (a linked node is visible).
  if (counter.waiters_.load(std::memory_order_acquire) != nullptr) {
    detail::die_with(
        "fiberjob: Counter destroyed while jobs or threads still wait on it; keep the counter "
        "alive until every wait on it has returned.");
  }
  // acquire: pairs with the release decrement in CounterWaitList::link (a finished link is
  // seen as finished).
  if (kCheckLinkers && counter.linkers_.load(std::memory_order_acquire) != 0) {
    detail::die_with(
        "fiberjob: Counter destroyed while a waiter is still linking into it (its wait has not "
        "returned): with several waiters, destroy a counter only once every wait on it has "
        "returned, not just one.");
  }
  // relaxed: a diagnostic; a correct program has no concurrent access here.
  if (counter.value_.load(std::memory_order_relaxed) != 0) {
    detail::die_with(
        "fiberjob: Counter destroyed while jobs it counts are still pending (count not zero); "
        "wait on the counter before it goes out of scope, also on paths that throw.");
  }
}

Counter::~Counter() {
  // The usual case, inline here: nothing pending (the raw count is 0: no unit, no drain in
  // progress, no value-wait flag), no waiter linked and, in debug builds, no link in progress.
  // Anything else takes the slow path, which joins or aborts with a message.
  // acquire (both): as in CounterWaitList::load_settled (seeing 0 means seeing every job's
  // writes) and as the waiters_ check of the slow path (pairs with the push CAS in
  // CounterWaitList::link).
  if (value_.load(std::memory_order_acquire) != 0 ||
      waiters_.load(std::memory_order_acquire) != nullptr ||
      (kCheckLinkers && linkers_.load(std::memory_order_acquire) != 0)) [[unlikely]] {
    CounterWaitList::destroy_busy(*this);
  }
}

void Counter::add(std::int64_t n) {
  if (n <= 0) {
    throw Error(ErrorCode::CounterMisuse,
                "fiberjob: Counter::add(" + std::to_string(n) + "): the amount must be > 0");
  }
  // Read before the add: a link already in progress then began while the count was not yet
  // raised by us, so if the count was zero it belongs to the previous round.
  // acquire: pairs with the release decrement in CounterWaitList::link.
  const std::uint32_t linking = kCheckLinkers ? linkers_.load(std::memory_order_acquire) : 0;
  // relaxed: the unit only has to exist before the job that removes it is queued, and the
  // queue push (release) / pop (acquire) orders that. Pairs with nothing itself.
  const std::int64_t previous = value_.fetch_add(n, std::memory_order_relaxed);
  if (previous == 0) {
    if (kCheckLinkers && linking != 0) {
      detail::die_with(
          "fiberjob: Counter reused (add after it reached zero) while a waiter of the previous "
          "round is still linking (its wait has not returned): start a new round only once "
          "every wait of the previous one has returned, not just one.");
    }
    CounterWaitList::forget_delivered_error(*this);
  } else if (previous < 0 && !CounterWaitList::is_waking(previous)) {
    value_.fetch_sub(n, std::memory_order_relaxed);  // relaxed: undo of the add above
    throw Error(ErrorCode::CounterMisuse,
                "fiberjob: Counter::add on a counter that was signalled more often than added "
                "to (count " +
                    std::to_string(previous) + "); every signal needs a matching add");
  }
}

void Counter::signal() noexcept {
  detail::Worker* worker = detail::current_worker();
  if (worker != nullptr && worker->combining_signals) {
    detail::defer_signal(*worker, *this);
    return;
  }
  CounterWaitList::signal(*this, worker);
}

bool Counter::done() const noexcept {
  if (CounterWaitList::load_settled(*this) == 0) return true;
  return apply_own_deferred(*this, /*links=*/false) && CounterWaitList::load_settled(*this) == 0;
}

std::int64_t Counter::pending() const noexcept {
  std::int64_t value = CounterWaitList::load_settled(*this);
  if (value != 0 && apply_own_deferred(*this, /*links=*/false)) {
    value = CounterWaitList::load_settled(*this);
  }
  return value > 0 ? (value & CounterWaitList::kCountMask) : value;  // without value-wait flags
}

std::uint32_t Counter::dropped_exceptions() const noexcept {
  return dropped_errors_.load(std::memory_order_relaxed);  // relaxed: a statistic
}

namespace detail {

std::int64_t CounterWaitList::settle(const Counter& counter) noexcept {
  // acquire: as in load_settled.
  std::int64_t value = counter.value_.load(std::memory_order_acquire);
  for (int spins = 0; is_waking(value); ++spins) {
    // The drainer needs three atomic operations; if it was preempted among them, let it run.
    spin_then_yield(spins);
    value = counter.value_.load(std::memory_order_acquire);  // acquire: as above
  }
  return value;
}

void CounterWaitList::link(Counter& counter, WaitNode& node, Worker* current) noexcept {
  // relaxed: published by the push CAS in link_chunk; cleared with release after our last
  // touch.
  node.linking.store(1, std::memory_order_relaxed);
  note_linker(counter);
  link_chunk(counter, node, node, 1, current);
}

void CounterWaitList::link_chunk(Counter& counter, WaitNode& first, WaitNode& last,
                                 std::int64_t count, Worker* current) noexcept {
  // The debug check of the lifetime rules counted each node already (note_linker).
  // relaxed: only the first guess of the CAS below.
  WaitNode* head = counter.waiters_.load(std::memory_order_relaxed);
  do {
    last.next = head;
    // acq_rel. release: publishes the nodes' `next` and the waiters' state to the drainer
    // (pairs with the acquire of the drain exchange). acquire: pairs with the release of a
    // drain exchange that came before us in the list's modification order, so the re-check
    // below sees that drainer's kWaking or later — the half of the handshake that closes the
    // lost wake-up.
  } while (!counter.waiters_.compare_exchange_weak(head, &first, std::memory_order_acq_rel,
                                                   std::memory_order_relaxed));
  // From here a signaller may wake the waiters, which may then destroy the counter — but not
  // before each has seen its node's `linking` == 0, which we store after our last touch of the
  // counter. Re-check: the count may have reached zero between the waiters' tests and the link.
  WaitNode* drained = nullptr;
  bool error_kept = false;
  if (load_settled(counter) == 0) {
    // acq_rel: as the drain in signal().
    drained = counter.waiters_.exchange(nullptr, std::memory_order_acq_rel);
    // Before our nodes' `linking` is cleared: until then the counter is alive for us.
    error_kept = drained != nullptr && may_keep_error(counter);
  }
  // release: pairs with the acquire loads in ~Counter and add(). Before `linking` = 0: after
  // that the counter may be gone.
  if (kCheckLinkers)
    counter.linkers_.fetch_sub(static_cast<std::uint32_t>(count), std::memory_order_release);
  // The nodes are walked through `chunk_next`, not `next`: once published, a drainer may cut
  // a wake chain's chunk by rewriting a node's `next`. Each node's `chunk_next` is read before
  // its `linking` is cleared: until then its waiter, even if already woken, waits in
  // wait_for_linker and leaves the node alone.
  WaitNode* node = &first;
  for (std::int64_t i = 1; i < count; ++i) {
    WaitNode* const next = node->chunk_next;
    node->linking.store(0, std::memory_order_release);  // release: pairs with wait_for_linker
    node = next;
  }
  node->linking.store(0, std::memory_order_release);  // release: pairs with wait_for_linker
  if (error_kept) [[unlikely]]
    drained = note_error_kept(drained);
  wake_list(drained, current);
}

void CounterWaitList::spin_until_linked(const WaitNode& node) noexcept {
  // acquire: as in wait_for_linker.
  for (int spins = 0; node.linking.load(std::memory_order_acquire) != 0; ++spins) {
    spin_then_yield(spins);
  }
}

void CounterWaitList::signal(Counter& counter, Worker* current, std::int64_t units) noexcept {
  // relaxed: only the first guess of the CAS below.
  std::int64_t value = counter.value_.load(std::memory_order_relaxed);
  std::int64_t next = 0;
  bool final_signal = false;
  do {
    if (value > units || (is_waking(value) && value >= kWaking + units)) {
      if (has_value_flags(value)) [[unlikely]] {  // value waiters: counter_value_wait.cpp
        signal_value_waiters(counter, current, units);
        return;
      }
      // Not the final signal. Also when units were added during another signaller's drain
      // (waking + k): that drainer restores the count, and waiters spin meanwhile instead of
      // linking, so reaching kWaking + 0 here leaves nothing to drain.
      next = value - units;
      final_signal = false;
    } else if (value == units) {
      next = kWaking;
      final_signal = true;
    } else {
      detail::die_with(
          "fiberjob: Counter::signal on a counter with no outstanding unit: it was signalled "
          "more often than jobs were added (a job signalled it by hand?). Every signal needs a "
          "matching add.");
    }
    // acq_rel. release: publishes this job's writes (and a captured exception) to the waiters,
    // who acquire the count. acquire: the final signaller must see every earlier job's writes,
    // because it is what makes fiber waiters runnable again.
  } while (!counter.value_.compare_exchange_weak(value, next, std::memory_order_acq_rel,
                                                 std::memory_order_relaxed));
  if (!final_signal) return;
  // We own the drain. acq_rel. acquire: pairs with the release of every push CAS (we read the
  // nodes). release: pairs with the acquire of a later push CAS (see link()).
  WaitNode* drained = counter.waiters_.exchange(nullptr, std::memory_order_acq_rel);
  // Whether the woken waiters must look at the counter's exception: read now, while no waiter
  // can see zero. A waiter told "no" never touches the counter again. The rare "yes" goes out
  // of line: a call inline here would make every signal set up a frame.
  if (drained != nullptr && may_keep_error(counter)) [[unlikely]] {
    finish_drain_keeping_error(counter, drained, current);
    return;
  }
  // release: pairs with the acquire loads in load_settled, so a waiter that sees the settled
  // count also sees the drain above finished (it may destroy the counter then). Our last touch
  // of the counter.
  counter.value_.fetch_sub(kWaking, std::memory_order_release);
  wake_list(drained, current);
}

void CounterWaitList::finish_drain_keeping_error(Counter& counter, WaitNode* drained,
                                                 Worker* current) noexcept {
  // release: as the restore at the end of signal(). Our last touch of the counter.
  counter.value_.fetch_sub(kWaking, std::memory_order_release);
  wake_list(note_error_kept(drained), current);
}

void CounterWaitList::capture(Counter& counter, std::exception_ptr error) noexcept {
  for (int spins = 0;; ++spins) {
    // acquire: pairs with the release stores that leave kErrorWriting (error_ is complete).
    std::uint32_t state = counter.error_state_.load(std::memory_order_acquire);
    if (state == Counter::kErrorCaptured) {
      // relaxed: a statistic; the exception it counts is dropped.
      counter.dropped_errors_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    // kErrorDelivered here belongs to an earlier round (this job was added after that round's
    // waits saw zero), so the new exception replaces it.
    // acquire: as above, for the previous owner's writes to error_.
    if (state != Counter::kErrorWriting &&
        counter.error_state_.compare_exchange_weak(state, Counter::kErrorWriting,
                                                   std::memory_order_acquire)) {
      counter.error_ = std::move(error);
      // relaxed: inside the kErrorWriting lock.
      counter.dropped_errors_.store(0, std::memory_order_relaxed);
      // release: pairs with the acquire loads above and in rethrow_if_error; the job's signal
      // (release CAS) publishes it to waiters as well.
      counter.error_state_.store(Counter::kErrorCaptured, std::memory_order_release);
      return;
    }
    if (spins > 64) sched_yield();
  }
}

void CounterWaitList::forget_delivered_error(Counter& counter) noexcept {
  // relaxed: only skips the CAS below in the common case (no error was ever delivered); the
  // CAS re-reads with acquire.
  if (counter.error_state_.load(std::memory_order_relaxed) != Counter::kErrorDelivered) return;
  std::uint32_t state = Counter::kErrorDelivered;
  // acquire: pairs with the release store of the capture that wrote error_. A failed CAS means
  // there is nothing delivered to forget (or a job of the new round is capturing right now).
  if (!counter.error_state_.compare_exchange_strong(state, Counter::kErrorWriting,
                                                    std::memory_order_acquire)) {
    return;
  }
  counter.error_ = nullptr;
  counter.dropped_errors_.store(0, std::memory_order_relaxed);  // relaxed: inside the lock
  // release: pairs with the acquire load/CAS in capture().
  counter.error_state_.store(Counter::kNoError, std::memory_order_release);
}

std::exception_ptr CounterWaitList::take_error(Counter& counter) noexcept {
  // acquire: as in rethrow_if_error.
  const std::uint32_t state = counter.error_state_.load(std::memory_order_acquire);
  if (state != Counter::kErrorCaptured && state != Counter::kErrorDelivered) return nullptr;
  std::exception_ptr error = counter.error_;  // complete: see rethrow_error
  std::uint32_t captured = Counter::kErrorCaptured;
  // relaxed: as in rethrow_error.
  counter.error_state_.compare_exchange_strong(captured, Counter::kErrorDelivered,
                                               std::memory_order_relaxed);
  return error;
}

void CounterWaitList::rethrow_error(Counter& counter) {
  // The acquire load in rethrow_if_error saw kErrorCaptured or kErrorDelivered: error_ is
  // complete and stays until the next round's add(), which runs after this wait returned.
  std::exception_ptr error = counter.error_;
  std::uint32_t captured = Counter::kErrorCaptured;
  // relaxed: a flag for the next round's add(), which runs after this wait returned.
  counter.error_state_.compare_exchange_strong(captured, Counter::kErrorDelivered,
                                               std::memory_order_relaxed);
  std::rethrow_exception(std::move(error));
}

bool CounterWaitList::wait_on_thread(Counter& counter) noexcept {
  if (load_settled(counter) == 0) return true;
  WaitNode node;
  node.kind = WaitNode::Kind::Thread;
  link(counter, node, current_worker());
  // acquire: pairs with the waker's release store of `woken` (wake_list), which comes after
  // the drainer's note_error_kept.
  while (node.woken.load(std::memory_order_acquire) == 0) futex_wait(node.woken, 0);
  return node.error_kept != 0;
}

}  // namespace detail
}  // namespace fiberjob
