// Relacy model of a timed wait racing its timeout (src/timer_queue.cpp, src/timer.cpp), with
// the exact memory orders of the code:
//   TimerQueue::lock / unlock                 -> heap_lock() / heap_unlock()
//   TimerQueue::insert / cancel / expire      -> arm() (under the event's lock) / cancel() /
//                                                expire()
//   EventAccess::link_timed / unlink          -> link_timed() / unlink()
//   Event::set (auto-reset), try_wait         -> set() / try_wait()
// The event's wait queue is the spin lock and FIFO of primitives_model.cpp, reduced to one
// node. The timer heap is reduced to one entry: `queued` stands for heap_index != kNotQueued.
// The counter's timed wait uses the same entry protocol with the value-waiter lock as the
// primitive's lock, whose own protocol primitives_model.cpp checks (value_wait).
// Lifetime: the entry and node carry an rl::var `alive` that the waiter clears once its wait
// returned; every access by the expirer or the setter asserts it.
// Model 2, stop_wake_sleep: a job's sleep woken by its stop (include/fiberjob/detail/
// stop_wake.hpp, src/stop_wake.cpp): StopWake::commit under the heap's lock in
// TimerQueue::insert, StopWake::on_stop's exchange and TimerQueue::remove, the expirer, and the
// std::stop_callback deregistration that waits for a running callback (libstdc++'s
// _M_remove_callback: the callback's `_M_done` semaphore). The stoppable counter and event waits
// run the same commit/exchange protocol under the value-waiter or wait-queue lock.
// Model 3, stop_hand_off: a job's Mutex lock wait (src/mutex.cpp) that its stop races with the
// owner's unlock, which hands the mutex to the oldest waiter. The stop's unlink and the
// unlock's pop both take the node under the wait queue's lock, so exactly one of them wakes
// it; the waiter reads StopWake::cancelled after deregistering the callback, and one that the
// unlock made owner but whose stop was requested unlocks again (detail::WaitEnd::GiveBack).
// Nothing may be lost: at the end nobody owns the mutex. Semaphore permits, an auto-reset
// Event's set and a ConditionVariable's notify go through the same steps.
// Negative variants weaken one step each (`Bug`); each must be reported.
// docs/model_checking.md.

#include "model_harness.hpp"

namespace {

using u32 = unsigned;

enum Bug : unsigned {
  kCorrect = 0,
  kFiringRelaxed = 1u << 0,      // expire: `firing` = 0 stored relaxed, not release
  kWakeWithoutUnlink = 1u << 1,  // expire: wakes the waiter without unlinking it first
  kCancelSkipsFiring = 1u << 2,  // cancel: does not wait for the expirer's `firing` = 0
};

using model::spin;

enum StopBug : unsigned {
  kStopCorrect = 0,
  kCommitOutsideLock = 1u << 0,  // link_sleep commits before the heap's lock, then inserts
  kExchangeRelaxed = 1u << 1,    // on_stop: the exchange relaxed, not acq_rel
  kNoCallbackWait = 1u << 2,     // disarm: does not wait for a callback running elsewhere
};

enum HandOffBug : unsigned {
  kHandOffCorrect = 0,
  kNoGiveBack = 1u << 0,         // the waiter keeps a mutex handed over after its stop
  kUnlinkOutsideLock = 1u << 1,  // on_stop's unlink reads and clears the queue unlocked
};

enum Reached : unsigned {
  kTimerWon,        // the expirer unlinked the node: a timeout
  kSetWon,          // the set took the node: completed
  kCancelWaited,    // cancel found the entry taken and waited for `firing`
  kStopWon,         // the stop callback took the sleep's entry off the heap
  kStopBeforeLink,  // the commit failed: the sleep linked nothing
  kSleepTimerWon,   // the expirer took the sleep's entry before the stop
  kGaveBack,        // the unlock handed the mutex over, then the waiter saw its stop
  kStopTookLock,    // the stop took the lock waiter off the queue
  kReachedCount
};
const char* const kReachedNames[kReachedCount] = {
    "timer-won",        "set-won",         "cancel-waited", "stop-won",
    "stop-before-link", "sleep-timer-won", "gave-back",     "stop-took-lock"};
unsigned long long g_reached[kReachedCount];
inline void cover(Reached what) { ++g_reached[what]; }
std::string coverage_report() { return model::coverage_line(kReachedNames, g_reached); }

constexpr u32 kLocked = 1;
constexpr u32 kSet = 2;

template <unsigned B>
struct TimedEventWait : rl::test_suite<TimedEventWait<B>, 3> {
  static constexpr bool has(Bug bug) { return (B & bug) != 0; }

  // The event (auto-reset): its word and a one-node queue.
  rl::atomic<u32> word;
  rl::var<bool> node_queued;
  // The waiter's node and timer entry.
  rl::atomic<u32> woken;
  rl::var<int> wakes;
  rl::var<int> alive;
  rl::var<bool> timed_out;
  rl::atomic<u32> firing;
  // The timer heap: its lock and whether our entry is in it.
  rl::atomic<u32> heap_locked;
  rl::var<bool> queued;
  // The waiter's verdict, checked in after().
  rl::var<int> result;  // 1: completed, 0: timed out

  void before() {
    word.store(0, rl::mo_relaxed, $);
    node_queued($) = false;
    woken.store(0, rl::mo_relaxed, $);
    wakes($) = 0;
    alive($) = 1;
    timed_out($) = false;
    firing.store(0, rl::mo_relaxed, $);
    heap_locked.store(0, rl::mo_relaxed, $);
    queued($) = false;
    result($) = -1;
  }
  void after() {
    // A timeout took no set; a completion took the one set.
    const u32 state = word.load(rl::mo_relaxed, $);
    RL_ASSERT(result($) == 1 ? state == 0 : state == kSet);
    RL_ASSERT(wakes($) <= 1);
  }

  // ---- the event's lock (WaitQueue) ----
  u32 lock() {
    u32 w = word.load(rl::mo_relaxed, $);
    for (;;) {
      if ((w & kLocked) == 0 &&
          word.compare_exchange_weak(w, w | kLocked, rl::mo_acquire, $, rl::mo_relaxed, $)) {
        return w;
      }
      if ((w & kLocked) != 0) {
        spin();
        w = word.load(rl::mo_relaxed, $);
      }
    }
  }
  void unlock(u32 state) { word.store(state, rl::mo_release, $); }

  // ---- the heap's lock ----
  void heap_lock() {
    while (heap_locked.load(rl::mo_relaxed, $) != 0 ||
           heap_locked.exchange(1, rl::mo_acquire, $) != 0) {
      spin();
    }
  }
  void heap_unlock() { heap_locked.store(0, rl::mo_release, $); }

  void wake() {  // wake_list on a thread node: the release store of `woken`, last touch
    RL_ASSERT(alive($) == 1);
    wakes($) = wakes($) + 1;
    woken.store(1, rl::mo_release, $);
  }

  // ---- the waiter ----
  bool try_wait() {
    u32 expected = kSet;
    return word.compare_exchange_strong(expected, 0, rl::mo_acq_rel, $, rl::mo_relaxed, $);
  }
  bool link_timed() {  // true: linked and armed
    const u32 s = lock();
    if (s == kSet) {
      unlock(0);  // auto-reset: take the set
      return false;
    }
    node_queued($) = true;
    heap_lock();  // arm(): insert
    timed_out($) = false;
    queued($) = true;
    heap_unlock();
    unlock(s);
    return true;
  }
  void cancel() {
    heap_lock();
    if (queued($)) {
      queued($) = false;
      heap_unlock();
      return;
    }
    heap_unlock();
    if (has(kCancelSkipsFiring)) return;
    if (firing.load(rl::mo_acquire, $) != 0) cover(kCancelWaited);
    while (firing.load(rl::mo_acquire, $) != 0) spin();
  }
  void waiter() {
    bool completed = true;
    if (!try_wait() && link_timed()) {
      while (woken.load(rl::mo_acquire, $) == 0) spin();
      cancel();
      completed = !timed_out($);
    }
    result($) = completed ? 1 : 0;
    alive($) = 0;  // the wait returned: the node and entry may be reused
  }

  // ---- the setter: Event::set on an auto-reset event ----
  void set() {
    if ((word.load(rl::mo_acquire, $) & ~kLocked) == kSet) return;
    lock();
    bool take = node_queued($);
    node_queued($) = false;
    unlock(take ? 0 : kSet);
    if (take) {
      cover(kSetWon);
      wake();
    }
  }

  // ---- the expirer: a worker that finds the deadline due ----
  bool unlink() {
    const u32 s = lock();
    const bool removed = node_queued($);
    node_queued($) = false;
    unlock(s);
    return removed;
  }
  void expire() {
    heap_lock();
    const bool took = queued($);
    if (took) {
      queued($) = false;
      firing.store(1, rl::mo_relaxed, $);
    }
    heap_unlock();
    if (!took) return;
    RL_ASSERT(alive($) == 1);
    const bool won = has(kWakeWithoutUnlink) ? (unlink(), true) : unlink();
    timed_out($) = won;
    firing.store(0, has(kFiringRelaxed) ? rl::mo_relaxed : rl::mo_release, $);
    if (won) {
      cover(kTimerWon);
      wake();
    }
  }

  void thread(unsigned index) {
    if (index == 0) {
      waiter();
    } else if (index == 1) {
      set();
    } else {
      expire();
    }
  }
};

constexpr u32 kIdle = 0;
constexpr u32 kLinked = 1;
constexpr u32 kStopped = 2;

/// The spin lock of the stop models (the timer heap's, the wait queue's, the stop state's).
void spin_lock(rl::atomic<u32>& word) {
  while (word.load(rl::mo_relaxed, $) != 0 || word.exchange(1, rl::mo_acquire, $) != 0) spin();
}
void spin_unlock(rl::atomic<u32>& word) { word.store(0, rl::mo_release, $); }

/// A wait's std::stop_callback, registered (StopWait::arm) before the wait links. libstdc++:
/// the stop state's lock and list, and the callback's `_M_done` semaphore that its
/// deregistration waits on when the callback runs elsewhere (_M_remove_callback).
struct StopCallback {
  rl::atomic<u32> locked;
  rl::var<bool> registered;
  rl::var<bool> running;
  rl::atomic<u32> done;

  void reset() {
    locked.store(0, rl::mo_relaxed, $);
    registered($) = true;
    running($) = false;
    done.store(0, rl::mo_relaxed, $);
  }
  /// ~std::stop_callback: deregisters, then waits for a callback running elsewhere unless
  /// `skip_wait` (a weakened variant).
  void disarm(bool skip_wait = false) {
    spin_lock(locked);
    registered($) = false;
    const bool wait = running($);
    spin_unlock(locked);
    if (wait && !skip_wait) {
      while (done.load(rl::mo_acquire, $) == 0) spin();
    }
  }
  /// request_stop's side: true when the callback is to run now; finished() once it returned.
  bool take() {
    spin_lock(locked);
    const bool run = registered($);
    registered($) = false;
    running($) = run;
    spin_unlock(locked);
    return run;
  }
  void finished() { done.store(1, rl::mo_release, $); }
};

template <unsigned B>
struct StopWakeSleep : rl::test_suite<StopWakeSleep<B>, 3> {
  static constexpr bool has(StopBug bug) { return (B & bug) != 0; }

  // The waiter's StopWake, node and timer entry.
  rl::atomic<u32> state;
  rl::var<int> node;  // StopWake::node, written by the linker's commit
  rl::atomic<u32> woken;
  rl::var<int> wakes;
  rl::var<int> alive;
  rl::var<bool> linked;
  rl::atomic<u32> firing;
  // The timer heap: its lock and whether our entry is in it.
  rl::atomic<u32> heap_locked;
  rl::var<bool> queued;
  StopCallback callback;

  void before() {
    state.store(kIdle, rl::mo_relaxed, $);
    node($) = 0;
    woken.store(0, rl::mo_relaxed, $);
    wakes($) = 0;
    alive($) = 1;
    linked($) = false;
    firing.store(0, rl::mo_relaxed, $);
    heap_locked.store(0, rl::mo_relaxed, $);
    queued($) = false;
    callback.reset();  // StopWait::arm ran before the link
  }
  void after() {
    // A linked sleep is woken exactly once (by the stop or the timer), an unlinked one never.
    RL_ASSERT(wakes($) == (linked($) ? 1 : 0));
  }

  void wake() {  // wake_list on the node: its last touch
    RL_ASSERT(alive($) == 1);
    wakes($) = wakes($) + 1;
    woken.store(1, rl::mo_release, $);
  }

  // ---- the waiter: link_sleep, the wait, then StopWait::disarm and the timer's cancel ----
  bool commit() {  // StopWake::commit
    node($) = 1;
    u32 expected = kIdle;
    return state.compare_exchange_strong(expected, kLinked, rl::mo_acq_rel, $, rl::mo_acquire, $);
  }
  bool link_sleep() {  // TimerQueue::insert with the sleep's StopWake
    if (has(kCommitOutsideLock)) {
      if (!commit()) return false;
      spin_lock(heap_locked);
    } else {
      spin_lock(heap_locked);
      if (!commit()) {
        spin_unlock(heap_locked);
        cover(kStopBeforeLink);
        return false;
      }
    }
    queued($) = true;
    spin_unlock(heap_locked);
    return true;
  }
  void cancel() {  // TimerQueue::cancel
    spin_lock(heap_locked);
    if (queued($)) {
      queued($) = false;
      spin_unlock(heap_locked);
      return;
    }
    spin_unlock(heap_locked);
    while (firing.load(rl::mo_acquire, $) != 0) spin();
  }
  void waiter() {
    linked($) = link_sleep();
    if (linked($)) {
      while (woken.load(rl::mo_acquire, $) == 0) spin();
    }
    callback.disarm(has(kNoCallbackWait));
    cancel();
    alive($) = 0;  // the sleep returned (and threw Cancelled): its frame may be reused
  }

  // ---- the stopper: request_stop running the callback (StopWake::on_stop) ----
  void on_stop() {
    const u32 prev =
        state.exchange(kStopped, has(kExchangeRelaxed) ? rl::mo_relaxed : rl::mo_acq_rel, $);
    if (prev != kLinked) return;
    RL_ASSERT(node($) == 1);
    spin_lock(heap_locked);  // TimerQueue::remove
    const bool removed = queued($);
    queued($) = false;
    spin_unlock(heap_locked);
    if (removed) {
      cover(kStopWon);
      wake();
    }
  }
  void stopper() {
    if (!callback.take()) return;
    on_stop();
    RL_ASSERT(alive($) == 1);  // the callback's own record is written after it returned
    callback.finished();
  }

  // ---- the expirer: a sleep's timer always wins once it took the entry ----
  void expire() {
    spin_lock(heap_locked);
    const bool took = queued($);
    if (took) {
      queued($) = false;
      firing.store(1, rl::mo_relaxed, $);
    }
    spin_unlock(heap_locked);
    if (!took) return;
    cover(kSleepTimerWon);
    firing.store(0, rl::mo_release, $);
    wake();
  }

  void thread(unsigned index) {
    if (index == 0) {
      waiter();
    } else if (index == 1) {
      stopper();
    } else {
      expire();
    }
  }
};

constexpr int kNobody = 0;
constexpr int kReleaser = 1;
constexpr int kWaiter = 2;

template <unsigned B>
struct StopHandOff : rl::test_suite<StopHandOff<B>, 3> {
  static constexpr bool has(HandOffBug bug) { return (B & bug) != 0; }

  // The mutex: its wait queue's lock word, whether our node is queued, and its owner.
  rl::atomic<u32> queue_locked;
  rl::var<bool> queued;
  rl::var<int> owner;
  // The waiter's StopWake and node.
  rl::atomic<u32> state;
  rl::var<bool> cancelled;
  rl::atomic<u32> woken;
  rl::var<int> wakes;
  rl::var<bool> linked;
  // The stop source's flag and the wait's std::stop_callback.
  rl::atomic<u32> stop_requested;
  StopCallback callback;

  void before() {
    queue_locked.store(0, rl::mo_relaxed, $);
    queued($) = false;
    owner($) = kReleaser;  // the releaser holds the mutex; the waiter's fast path failed
    state.store(kIdle, rl::mo_relaxed, $);
    cancelled($) = false;
    woken.store(0, rl::mo_relaxed, $);
    wakes($) = 0;
    linked($) = false;
    stop_requested.store(0, rl::mo_relaxed, $);
    callback.reset();  // StopWait::arm ran before the link
  }
  void after() {
    RL_ASSERT(owner($) == kNobody);  // no hand-off lost
    RL_ASSERT(wakes($) == (linked($) ? 1 : 0));
  }

  void wake() {  // wake_list on the node: its last touch
    wakes($) = wakes($) + 1;
    woken.store(1, rl::mo_release, $);
  }
  void release(int who) {  // Mutex::release: to the oldest waiter, else free
    spin_lock(queue_locked);
    RL_ASSERT(owner($) == who);
    if (queued($)) {
      queued($) = false;
      owner($) = kWaiter;
      spin_unlock(queue_locked);
      wake();
      return;
    }
    owner($) = kNobody;
    spin_unlock(queue_locked);
  }

  // ---- the waiter: Mutex::link_locker, the wait, StoppableWait::end, finish_lock ----
  bool link_locker() {
    spin_lock(queue_locked);
    if (owner($) == kNobody) {  // freed since the fast path: take it
      owner($) = kWaiter;
      spin_unlock(queue_locked);
      return false;
    }
    u32 expected = kIdle;  // StopWake::commit
    if (!state.compare_exchange_strong(expected, kLinked, rl::mo_acq_rel, $, rl::mo_acquire, $)) {
      cancelled($) = true;
      spin_unlock(queue_locked);
      return false;
    }
    queued($) = true;
    spin_unlock(queue_locked);
    return true;
  }
  void waiter() {
    linked($) = link_locker();
    if (linked($)) {
      while (woken.load(rl::mo_acquire, $) == 0) spin();
    }
    callback.disarm();
    if (cancelled($)) {  // WaitEnd::Cancelled: holds nothing
      spin_lock(queue_locked);
      RL_ASSERT(owner($) != kWaiter);
      spin_unlock(queue_locked);
      return;
    }
    // It owns the mutex: the unlock handed it over (or it was free at the link).
    if (stop_requested.load(rl::mo_acquire, $) != 0) {  // WaitEnd::GiveBack
      cover(kGaveBack);
      if (has(kNoGiveBack)) return;
    }
    release(kWaiter);  // GiveBack's unlock, or the guard's at the end of the critical section
  }

  // ---- the stopper: request_stop, then the callback (StopWake::on_stop, unlink_locker) ----
  void on_stop() {
    if (state.exchange(kStopped, rl::mo_acq_rel, $) != kLinked) return;
    bool removed = false;
    if (has(kUnlinkOutsideLock)) {
      removed = queued($);
      queued($) = false;
    } else {
      spin_lock(queue_locked);  // WaitQueue::withdraw
      removed = queued($);
      queued($) = false;
      spin_unlock(queue_locked);
    }
    if (!removed) return;  // the unlock took it: that one wakes it
    cover(kStopTookLock);
    cancelled($) = true;
    wake();
  }
  void stopper() {
    stop_requested.store(1, rl::mo_release, $);  // std::stop_source::request_stop
    if (!callback.take()) return;
    on_stop();
    callback.finished();
  }

  void thread(unsigned index) {
    if (index == 0) {
      waiter();
    } else if (index == 1) {
      stopper();
    } else {
      release(kReleaser);  // the owner's unlock
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  model::Runner runner("timer_model", argc, argv);
  runner.coverage = coverage_report;
  runner.pass<TimedEventWait<kCorrect>>("timed_event_wait", {model::kBound2, model::kRandom});
  runner.fail<TimedEventWait<kFiringRelaxed>>(
      "neg_firing_relaxed", "the waiter's read of timed_out races with the expirer's write");
  runner.fail<TimedEventWait<kWakeWithoutUnlink>>(
      "neg_wake_without_unlink", "a waiter the set already took is woken twice, after it left");
  runner.fail<TimedEventWait<kCancelSkipsFiring>>(
      "neg_cancel_skips_firing", "the expirer touches an entry whose waiter has left");
  runner.pass<StopWakeSleep<kStopCorrect>>("stop_wake_sleep", {model::kBound2, model::kRandom});
  runner.fail<StopWakeSleep<kCommitOutsideLock>>(
      "neg_commit_outside_lock", "the stop finds the sleep committed but not armed: no wake");
  runner.fail<StopWakeSleep<kExchangeRelaxed>>(
      "neg_stop_exchange_relaxed", "the callback reads the node the linker wrote, unordered");
  runner.fail<StopWakeSleep<kNoCallbackWait>>(
      "neg_no_callback_wait", "the callback touches its record after the sleep returned");
  runner.pass<StopHandOff<kHandOffCorrect>>("stop_hand_off", {model::kBound2, model::kRandom});
  runner.fail<StopHandOff<kNoGiveBack>>(
      "neg_no_give_back", "a mutex handed to a waiter whose stop came is never unlocked");
  runner.fail<StopHandOff<kUnlinkOutsideLock>>(
      "neg_unlink_outside_lock", "the stop and the unlock both take the waiter's node");
  return runner.finish();
}
