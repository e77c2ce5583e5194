// Relacy models of the primitives' protocols, with the exact memory orders of the code:
//
// 1. The wait queue (src/wait_queue.cpp) as Event (src/event.cpp) and Mutex (src/mutex.cpp)
//    use it: a spin lock sharing its word with the primitive's state, a FIFO of nodes as plain
//    variables under the lock, wakes after the unlock.
//      WaitQueue::lock / unlock / try_update / state  -> lock() / unlock() / try_update() / state()
//      Event::set / try_wait / link_waiter            -> event_set() / event_try_wait() /
//      event_link() Mutex::try_lock_as / link_locker / release     -> mutex_try_lock() /
//      mutex_link() / mutex_release()
// 2. Wait-for-value (src/counter_value_wait.cpp): the two flag bits in the count word, the
//    value linker, the flagged signal, and the plain signal's one compare (src/counter.cpp).
//      CounterWaitList::link_value_waiter     -> value_link()
//      CounterWaitList::signal_value_waiters  -> value_signal_flagged()
//      CounterWaitList::signal                -> value_signal()
// Waiters are threads (Kind::Thread): woken by a release store of `woken`, as wake_list does.
// Lifetime: the primitive and the counter carry an rl::var `alive` that the last user clears;
// every access asserts it, so an access after the destruction fails or races.
// Negative variants weaken one step each (`Bug`); each must be reported. docs/model_checking.md.

#include "model_harness.hpp"

namespace {

using i64 = std::int64_t;
using u32 = unsigned;

enum Bug : unsigned {
  kCorrect = 0,
  kUnlockRelaxed = 1u << 0,         // WaitQueue::unlock: `relaxed` store instead of `release`
  kWakeBeforeUnlock = 1u << 1,      // Event::set wakes the waiters before its unlock
  kConsumeByStore = 1u << 2,        // Event::try_wait (auto): load then store, not one CAS
  kUnlockIgnoresWaiters = 1u << 3,  // Mutex::release: frees the mutex even with waiters
  kValueUnlockRelaxed = 1u << 4,    // value linker: unlocking CAS `relaxed`, not `release`
  kSignalIgnoresFlags = 1u << 5,    // signal: no flag check (the one compare removed)
};

inline void spin() { rl::yield(1, $); }

// Coverage: how often the search reached the interleavings the positive models are about
// (plain counters; they never affect the model).
enum Reached : unsigned {
  kEventLinked,       // a waiter linked its node (the event was not set)
  kMutexHandedOff,    // an unlock handed the mutex to a queued waiter
  kLockSpun,          // a WaitQueue::lock found the word locked and spun
  kValueLinked,       // a value waiter linked itself
  kFlaggedWoke,       // a flagged non-final signal woke a value waiter
  kFinalTookWaiters,  // the final signal took value waiters with it
  kSignalSpunOnLock,  // a signal found kValueLocked and spun
  kReachedCount
};
const char* const kReachedNames[kReachedCount] = {
    "event-linked", "mutex-handed-off",         "lock-spun",          "value-linked",
    "flagged-woke", "final-took-value-waiters", "signal-spun-on-lock"};
unsigned long long g_reached[kReachedCount];
inline void cover(Reached what) { ++g_reached[what]; }

std::string coverage_report() {
  std::string text;
  for (unsigned i = 0; i < kReachedCount; ++i) {
    if (g_reached[i] == 0) continue;
    text += text.empty() ? "" : ", ";
    text += kReachedNames[i];
    text += ' ';
    text += std::to_string(g_reached[i]);
    g_reached[i] = 0;
  }
  return text.empty() ? "none" : text;
}

struct Node {
  rl::atomic<u32> woken;
  rl::var<Node*> next;
  rl::var<int> alive;
};

inline void init(Node& n) {
  n.woken.store(0, rl::mo_relaxed, $);
  n.next($) = nullptr;
  n.alive($) = 1;
}

inline void await_woken(Node& n) {
  while (n.woken.load(rl::mo_acquire, $) == 0) spin();
}

inline void wake(Node* chain) {  // wake_list: next read before the wake (last touch)
  while (chain != nullptr) {
    RL_ASSERT(chain->alive($) == 1);
    Node* next = chain->next($);
    chain->woken.store(1, rl::mo_release, $);
    chain = next;
  }
}

// ---- 1. The wait queue -----------------------------------------------------------------------

constexpr u32 kLocked = 1;
constexpr u32 kSet = 2;   // Event
constexpr u32 kHeld = 2;  // Mutex
constexpr u32 kWaiters = 4;

struct Queue {
  rl::atomic<u32> word;
  rl::var<Node*> head;
  rl::var<Node*> tail;
  rl::var<int> alive;
};

inline void init(Queue& q, u32 state) {
  q.word.store(state, rl::mo_relaxed, $);
  q.head($) = nullptr;
  q.tail($) = nullptr;
  q.alive($) = 1;
}
inline void touch(Queue& q) { RL_ASSERT(q.alive($) == 1); }

template <unsigned B>
struct WaitQueueProtocol {
  static constexpr bool has(Bug bug) { return (B & bug) != 0; }

  static u32 lock(Queue& q) {
    touch(q);
    u32 word = q.word.load(rl::mo_relaxed, $);
    for (;;) {
      if ((word & kLocked) == 0 &&
          q.word.compare_exchange_weak(word, word | kLocked, rl::mo_acquire, $, rl::mo_relaxed,
                                       $)) {
        return word;
      }
      if ((word & kLocked) != 0) {
        cover(kLockSpun);
        spin();
        touch(q);
        word = q.word.load(rl::mo_relaxed, $);
      }
    }
  }
  static void unlock(Queue& q, u32 state) {
    touch(q);
    q.word.store(state, has(kUnlockRelaxed) ? rl::mo_relaxed : rl::mo_release, $);
  }
  static u32 state(Queue& q) {
    touch(q);
    return q.word.load(rl::mo_acquire, $) & ~kLocked;
  }
  static bool try_update(Queue& q, u32 expected, u32 desired) {
    touch(q);
    return q.word.compare_exchange_strong(expected, desired, rl::mo_acq_rel, $, rl::mo_relaxed, $);
  }
  static void push_back(Queue& q, Node& n) {
    n.next($) = nullptr;
    Node* tail = q.tail($);
    if (tail != nullptr) {
      tail->next($) = &n;
    } else {
      q.head($) = &n;
    }
    q.tail($) = &n;
  }
  static Node* pop_front(Queue& q) {
    Node* n = q.head($);
    if (n != nullptr) {
      q.head($) = n->next($);
      if (q.head($) == nullptr) q.tail($) = nullptr;
      n->next($) = nullptr;
    }
    return n;
  }
  static Node* take_all(Queue& q) {
    Node* chain = q.head($);
    q.head($) = nullptr;
    q.tail($) = nullptr;
    return chain;
  }

  // Event.
  static void event_set(Queue& q, bool automatic) {
    if (state(q) == kSet) return;
    lock(q);
    Node* woken = nullptr;
    u32 next = kSet;
    if (!automatic) {
      woken = take_all(q);
    } else if ((woken = pop_front(q)) != nullptr) {
      next = 0;
    }
    if (has(kWakeBeforeUnlock)) wake(woken);
    unlock(q, next);
    if (!has(kWakeBeforeUnlock)) wake(woken);
  }
  static bool event_try_wait(Queue& q, bool automatic) {
    if (!automatic) return state(q) == kSet;
    if (has(kConsumeByStore)) {
      if (state(q) != kSet) return false;
      touch(q);
      q.word.store(0, rl::mo_relaxed, $);
      return true;
    }
    return try_update(q, kSet, 0);
  }
  static bool event_link(Queue& q, Node& n, bool automatic) {
    const u32 s = lock(q);
    if (s == kSet) {
      unlock(q, automatic ? 0 : kSet);
      return false;
    }
    push_back(q, n);
    unlock(q, s);
    cover(kEventLinked);
    return true;
  }
  // A thread's wait: returns when it may go on.
  static void event_wait(Queue& q, Node& n, bool automatic) {
    if (event_try_wait(q, automatic)) return;
    if (event_link(q, n, automatic)) await_woken(n);
  }

  // Mutex (owner tokens are not modelled: they are relaxed and only compared with the reader's
  // own token).
  static bool mutex_try_lock(Queue& q) { return try_update(q, 0, kHeld); }
  static bool mutex_link(Queue& q, Node& n) {
    const u32 s = lock(q);
    if ((s & kHeld) == 0) {
      unlock(q, kHeld);
      return false;
    }
    push_back(q, n);
    unlock(q, kHeld | kWaiters);
    return true;
  }
  static void mutex_lock(Queue& q, Node& n) {
    if (mutex_try_lock(q)) return;
    if (mutex_link(q, n)) await_woken(n);
  }
  static void mutex_release(Queue& q) {
    if (has(kUnlockIgnoresWaiters)) {
      touch(q);
      u32 word = q.word.load(rl::mo_relaxed, $);
      while ((word & kLocked) != 0 ||
             !q.word.compare_exchange_weak(word, 0, rl::mo_release, $, rl::mo_relaxed, $)) {
        spin();
        word = q.word.load(rl::mo_relaxed, $);
      }
      return;
    }
    if (try_update(q, kHeld, 0)) return;
    lock(q);
    Node* next = pop_front(q);
    if (next == nullptr) {
      unlock(q, 0);
      return;
    }
    const bool more = q.head($) != nullptr;
    unlock(q, more ? kHeld | kWaiters : kHeld);
    cover(kMutexHandedOff);
    wake(next);
  }
};

// Model E1: a manual-reset event; W waits (fast path or link) and destroys the event as soon as
// its wait returns; S writes job data, then sets. Catches a set that touches the event after a
// waiter may go on, and a missing release.
template <unsigned B>
struct EventLifetime : rl::test_suite<EventLifetime<B>, 2> {
  using P = WaitQueueProtocol<B>;
  Queue q;
  Node node;
  rl::var<int> data;

  void before() {
    init(q, 0);
    init(node);
    data($) = 0;
  }
  void thread(unsigned index) {
    if (index == 0) {
      P::event_wait(q, node, false);
      RL_ASSERT(data($) == 1);
      touch(q);
      RL_ASSERT(q.head($) == nullptr);
      q.alive($) = 0;  // ~Event
    } else {
      data($) = 1;
      P::event_set(q, false);
    }
  }
};

// Model E2: an auto-reset event, two waiters that each take the set or link (and leave), one
// set: exactly one waiter gets through; the other stays linked, the event is reset.
template <unsigned B>
struct AutoResetOnce : rl::test_suite<AutoResetOnce<B>, 3> {
  using P = WaitQueueProtocol<B>;
  Queue q;
  Node nodes[2];
  rl::atomic<int> fast_passes;

  void before() {
    init(q, 0);
    init(nodes[0]);
    init(nodes[1]);
    fast_passes.store(0, rl::mo_relaxed, $);
  }
  void after() {
    int passes = fast_passes.load(rl::mo_relaxed, $);
    for (Node& n : nodes) passes += static_cast<int>(n.woken.load(rl::mo_relaxed, $));
    RL_ASSERT(passes == 1);
    RL_ASSERT((q.word.load(rl::mo_relaxed, $) & kSet) == 0);
  }
  void thread(unsigned index) {
    if (index < 2) {
      Node& n = nodes[index];
      if (P::event_try_wait(q, true) || !P::event_link(q, n, true)) {
        fast_passes.fetch_add(1, rl::mo_relaxed, $);
      }
    } else {
      P::event_set(q, true);
    }
  }
};

// Model M1: the mutex starts held by T0; T1 and T2 lock (fast path or link) while T0 unlocks.
// Each owner increments a plain variable: a missing edge is a data race; a waiter the unlock
// forgets spins forever (LIVELOCK).
template <unsigned B>
struct MutexHandOff : rl::test_suite<MutexHandOff<B>, 3> {
  using P = WaitQueueProtocol<B>;
  Queue q;
  Node nodes[3];
  rl::var<int> total;

  void before() {
    init(q, kHeld);
    for (Node& n : nodes) init(n);
    total($) = 0;
  }
  void after() { RL_ASSERT(total($) == 3); }
  void thread(unsigned index) {
    if (index != 0) P::mutex_lock(q, nodes[index]);
    total($) = total($) + 1;
    P::mutex_release(q);
  }
};

// ---- 2. Wait-for-value -----------------------------------------------------------------------

constexpr i64 kWaking = -(i64{1} << 62);
constexpr i64 kValueWaiters = i64{1} << 59;
constexpr i64 kValueLocked = i64{1} << 60;
constexpr i64 kCountMask = kValueWaiters - 1;
inline bool is_waking(i64 v) { return v < -(i64{1} << 61); }

struct ValueWaiter {
  i64 target = 0;
  Node* node = nullptr;
  rl::var<ValueWaiter*> next;
};

struct Counter {
  rl::atomic<i64> value;
  rl::var<ValueWaiter*> list;  // Counter::value_waiters_
  rl::var<int> alive;
};
inline void touch(Counter& c) { RL_ASSERT(c.alive($) == 1); }

template <unsigned B>
struct ValueProtocol {
  static constexpr bool has(Bug bug) { return (B & bug) != 0; }

  static i64 load_settled(Counter& c) {
    touch(c);
    i64 v = c.value.load(rl::mo_acquire, $);
    while (is_waking(v)) {
      spin();
      touch(c);
      v = c.value.load(rl::mo_acquire, $);
    }
    return v;
  }

  static bool value_link(Counter& c, ValueWaiter& w, Node& n) {
    w.node = &n;
    touch(c);
    i64 v = c.value.load(rl::mo_acquire, $);
    for (;;) {
      if (is_waking(v) || (v & kValueLocked) != 0) {
        spin();
        touch(c);
        v = c.value.load(rl::mo_acquire, $);
        continue;
      }
      if ((v & kCountMask) <= w.target) return false;
      touch(c);
      if (c.value.compare_exchange_weak(v, v | kValueLocked, rl::mo_acquire, $, rl::mo_acquire,
                                        $)) {
        break;
      }
    }
    w.next($) = c.list($);
    c.list($) = &w;
    v |= kValueLocked;
    const rl::memory_order order = has(kValueUnlockRelaxed) ? rl::mo_relaxed : rl::mo_release;
    for (;;) {
      touch(c);
      if (c.value.compare_exchange_weak(v, (v & ~kValueLocked) | kValueWaiters, order, $,
                                        rl::mo_relaxed, $)) {
        break;
      }
    }
    cover(kValueLinked);
    return true;
  }

  static Node* take_satisfied(Counter& c, i64 count) {
    Node* chain = nullptr;
    ValueWaiter* kept = nullptr;
    for (ValueWaiter* w = c.list($); w != nullptr;) {
      ValueWaiter* next = w->next($);
      if (w->target >= count) {
        Node* n = w->node;
        n->next($) = chain;
        chain = n;
      } else {
        w->next($) = kept;
        kept = w;
      }
      w = next;
    }
    c.list($) = kept;
    return chain;
  }

  static void value_signal_flagged(Counter& c) {
    touch(c);
    i64 v = c.value.load(rl::mo_relaxed, $);
    i64 count = 0;
    for (;;) {
      if (v < kValueWaiters) {
        value_signal(c);
        return;
      }
      if ((v & kValueLocked) != 0) {
        cover(kSignalSpunOnLock);
        spin();
        touch(c);
        v = c.value.load(rl::mo_relaxed, $);
        continue;
      }
      count = (v & kCountMask) - 1;
      RL_ASSERT(count >= 0);
      const i64 next = count == 0 ? kWaking : count | kValueWaiters | kValueLocked;
      touch(c);
      if (c.value.compare_exchange_weak(v, next, rl::mo_acq_rel, $, rl::mo_relaxed, $)) break;
    }
    touch(c);
    Node* woken = take_satisfied(c, count);
    if (count == 0) {
      if (woken != nullptr) cover(kFinalTookWaiters);
      touch(c);
      c.value.fetch_sub(kWaking, rl::mo_release, $);  // (the zero list's drain: not modelled)
      wake(woken);
      return;
    }
    const i64 keep = c.list($) != nullptr ? kValueWaiters : 0;
    v = count | kValueWaiters | kValueLocked;
    for (;;) {
      touch(c);
      if (c.value.compare_exchange_weak(v, (v & kCountMask) | keep, rl::mo_release, $,
                                        rl::mo_relaxed, $)) {
        break;
      }
    }
    if (woken != nullptr) cover(kFlaggedWoke);
    wake(woken);
  }

  static void value_signal(Counter& c) {
    touch(c);
    i64 v = c.value.load(rl::mo_relaxed, $);
    i64 next = 0;
    bool final_signal = false;
    for (;;) {
      if (v > 1 || (is_waking(v) && v > kWaking)) {
        if (!has(kSignalIgnoresFlags) && v >= kValueWaiters) {
          value_signal_flagged(c);
          return;
        }
        next = v - 1;
        final_signal = false;
      } else if (v == 1) {
        next = kWaking;
        final_signal = true;
      } else {
        RL_ASSERT(!"over-signalled");
      }
      touch(c);
      if (c.value.compare_exchange_weak(v, next, rl::mo_acq_rel, $, rl::mo_relaxed, $)) break;
    }
    if (!final_signal) return;
    touch(c);
    c.value.fetch_sub(kWaking, rl::mo_release, $);
  }

  static void value_wait(Counter& c, ValueWaiter& w, Node& n) {
    if ((load_settled(c) & kCountMask) <= w.target) return;
    if (value_link(c, w, n)) await_woken(n);
  }
};

// Model V1: count 2; W1 waits for <= 1, W0 for <= 0 and destroys the counter once both waits
// returned; S1 and S2 write job data and signal. W1 must see at least one job's data, W0 both.
template <unsigned B>
struct ValueWait : rl::test_suite<ValueWait<B>, 4> {
  using P = ValueProtocol<B>;
  Counter c;
  ValueWaiter waiters[2];
  Node nodes[2];
  rl::atomic<int> w1_done;
  rl::atomic<int> data1;
  rl::atomic<int> data2;

  void before() {
    c.value.store(2, rl::mo_relaxed, $);
    c.list($) = nullptr;
    c.alive($) = 1;
    for (int i = 0; i < 2; ++i) {
      init(nodes[i]);
      waiters[i].target = i;
      waiters[i].next($) = nullptr;
    }
    w1_done.store(0, rl::mo_relaxed, $);
    data1.store(0, rl::mo_relaxed, $);
    data2.store(0, rl::mo_relaxed, $);
  }
  void thread(unsigned index) {
    if (index == 0) {  // W0: waits for zero through the value list, then destroys the counter
      P::value_wait(c, waiters[0], nodes[0]);
      RL_ASSERT(data1.load(rl::mo_relaxed, $) + data2.load(rl::mo_relaxed, $) == 2);
      while (w1_done.load(rl::mo_acquire, $) == 0) spin();
      touch(c);
      RL_ASSERT(c.list($) == nullptr);
      c.alive($) = 0;
    } else if (index == 1) {  // W1
      P::value_wait(c, waiters[1], nodes[1]);
      RL_ASSERT(data1.load(rl::mo_relaxed, $) + data2.load(rl::mo_relaxed, $) >= 1);
      w1_done.store(1, rl::mo_release, $);
    } else {
      (index == 2 ? data1 : data2).store(1, rl::mo_relaxed, $);
      P::value_signal(c);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  using model::Expect;
  model::Runner runner("primitives_model", argc, argv);
  runner.coverage = coverage_report;
  // Four threads: a context bound of 1 already takes about 20 s.
  const model::Search bound1{rl::sched_bound, 0, 1};

  runner.run<EventLifetime<kCorrect>>("event_lifetime", Expect::Pass, model::kFull);
  runner.run<EventLifetime<kCorrect>>("event_lifetime", Expect::Pass, model::kRandom);
  runner.run<AutoResetOnce<kCorrect>>("auto_reset_once", Expect::Pass, model::kBound3);
  runner.run<AutoResetOnce<kCorrect>>("auto_reset_once", Expect::Pass, model::kRandom);
  runner.run<MutexHandOff<kCorrect>>("mutex_hand_off", Expect::Pass, model::kBound3);
  runner.run<MutexHandOff<kCorrect>>("mutex_hand_off", Expect::Pass, model::kRandom);
  runner.run<ValueWait<kCorrect>>("value_wait", Expect::Pass, bound1);
  runner.run<ValueWait<kCorrect>>("value_wait", Expect::Pass, model::kRandom);

  // Negative variants: each must be caught.
  runner.run<EventLifetime<kUnlockRelaxed>>("neg_unlock_relaxed", Expect::Fail,
                                            model::kRandomNegative,
                                            "the waiter's read of the job data races");
  runner.run<EventLifetime<kWakeBeforeUnlock>>("neg_wake_before_unlock", Expect::Fail,
                                               model::kRandomNegative,
                                               "set unlocks an event its waiter destroyed");
  runner.run<AutoResetOnce<kConsumeByStore>>(
      "neg_consume_by_store", Expect::Fail, model::kRandomNegative,
      "a consume outside the lock: two waiters take one set, and the store "
      "breaks the lock (a data race on the list)");
  runner.run<MutexHandOff<kUnlockIgnoresWaiters>>("neg_unlock_ignores_waiters", Expect::Fail,
                                                  model::kRandomNegative,
                                                  "a queued locker is never woken (LIVELOCK)");
  runner.run<ValueWait<kValueUnlockRelaxed>>("neg_value_unlock_relaxed", Expect::Fail,
                                             model::kRandomNegative,
                                             "the signaller's read of the list races");
  runner.run<ValueWait<kSignalIgnoresFlags>>("neg_signal_ignores_flags", Expect::Fail,
                                             model::kRandomNegative,
                                             "a value waiter is never woken (LIVELOCK)");
  return runner.finish();
}
