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

enum Reached : unsigned {
  kTimerWon,      // the expirer unlinked the node: a timeout
  kSetWon,        // the set took the node: completed
  kCancelWaited,  // cancel found the entry taken and waited for `firing`
  kReachedCount
};
const char* const kReachedNames[kReachedCount] = {"timer-won", "set-won", "cancel-waited"};
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
  return runner.finish();
}
