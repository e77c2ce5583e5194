// Relacy model of the counter wait-list protocol (src/counter.cpp, src/wake_list.cpp wake_list,
// include/fiberjob/detail/wait_node.hpp), with the exact memory orders of the code.
//
// What is modelled, operation for operation:
//   CounterWaitList::signal          -> signal()
//   CounterWaitList::link            -> link()
//   CounterWaitList::load_settled    -> load_settled()
//   CounterWaitList::wait_for_linker -> wait_for_linker()
//   wake_list                      -> wake_list() (every waiter woken the way a Kind::Thread node
//                                     is: a release store of `woken`; a fiber's resume through
//                                     the queues is the same release/acquire hand-off)
//   Counter::add                   -> add() (the relaxed fetch_add and its waking-range check)
//   Counter::~Counter              -> destroy() (its two checks), then the counter is dead
// Not modelled: the exception slot (error_state_), the futex, the scheduler hint.
//
// Lifetime: `Counter::alive` is an rl::var that the waiter clears when it destroys the counter
// (as soon as its wait returned). Every access to the counter by anyone reads it first and
// asserts it is set, so a signaller or linker that touches the counter after the destruction
// either fails the assertion or (when that access is not ordered before the destruction)
// makes Relacy report a data race on `alive`. Nodes have the same flag (a thread waiter's node
// dies with its stack frame when the wait returns).
//
// Job data: each signaller writes an rl::var before its signal and the waiter reads it after
// its wait returned, so a missing happens-before edge is a data race.
//
// Negative variants are the same code with one step weakened (the `Bug` bits below); each must
// be reported by Relacy. See docs/model_checking.md for what each one finds.

#include "model_harness.hpp"

namespace {

using i64 = std::int64_t;

// The counter's sentinel, as in src/counter_wait_list.hpp.
constexpr i64 kWaking = -(i64{1} << 62);
inline bool is_waking(i64 value) { return value < -(i64{1} << 61); }

// Negative variants: each bit weakens or removes one step of the real protocol.
enum Bug : unsigned {
  kCorrect = 0,
  kPushCasRelease = 1u << 0,    // link: push CAS `release` instead of `acq_rel`
  kDrainAcquire = 1u << 1,      // both drain exchanges `acquire` instead of `acq_rel`
  kNoRecheck = 1u << 2,         // link: no re-load of the count after the push
  kNoLinkerWait = 1u << 3,      // the woken waiter returns without wait_for_linker
  kLinkingRelaxed = 1u << 4,    // link: `linking` store 0 `relaxed` instead of `release`
  kFinalByNext = 1u << 5,       // signal: final signaller decided by `next == kWaking`
  kNoSentinel = 1u << 6,        // signal: fetch_sub to 0, then drain (no kWaking state)
  kRestoreRelaxed = 1u << 7,    // signal: fetch_sub(kWaking) `relaxed` instead of `release`
  kSignalCasRelease = 1u << 8,  // signal: value CAS `release` instead of `acq_rel`
  kNextAfterWake = 1u << 9,     // wake_list: reads node->next after waking the node
  kNextAfterClear = 1u << 10,   // link_chunk: reads node->chunk_next after clearing `linking`
  kChunkByNext = 1u << 11,      // link_chunk: walks its nodes through `next`, not `chunk_next`
  // The stoppable wait's claim (StoppableWait below):
  kClaimRelaxed = 1u << 12,        // commit, the drainer's claim and the stop's exchange relaxed
  kClaimByStore = 1u << 13,        // the drainer claims by a load and a plain store, not a CAS
  kNoDisarmLinkerWait = 1u << 14,  // the waiter drops its reference to the block without
                                   // waiting for the block's linker
  kOneReference = 1u << 15,        // the waiter gives the block back alone (no list reference)
  // Not a bug, a model option: the counter outlives the model (Reuse), so only the protocol's
  // own effects can show a fault, not the lifetime check.
  kKeepCounter = 1u << 16,
  // Not a protocol change: the *caller* breaks the documented reuse rule (counter.hpp: reuse
  // only once every wait of the previous round returned) — TwoWaitersReuse starts round 2
  // without waiting for the other waiter.
  kEarlyReuse = 1u << 17,
};

// Coverage: how often the search reached the interleavings each positive model is about. Plain
// counters (Relacy runs every modelled thread on one OS thread); they never affect the model.
enum Event : unsigned {
  kWaiterFastPath,    // the waiter's first load_settled saw 0: returned without linking
  kSignallerDrained,  // the final signaller's exchange took at least one node
  kLinkerDrained,     // the linker's re-check saw 0 and its own exchange took nodes
  kSettleSpun,        // a load_settled saw the kWaking range and spun
  kLinkerWaitSpun,    // a woken waiter found `linking` still 1 and waited for the linker
  kTwoNodesDrained,   // one drain took two nodes
  kAddInWaking,       // an add landed between the final CAS and the restore
  kSignalInWaking,    // a signal moved the count from kWaking + k (not a second drainer)
  kStopBeforeCommit,  // the stop came before the linker's commit: nothing linked
  kStopWon,           // the stop claimed a linked node (it became a tombstone)
  kDrainerWon,        // the drainer claimed a linked stoppable node and woke its waiter
  kTombstoneSkipped,  // a drainer met a tombstone and skipped it
  kDrainerFreed,      // the drainer's reference was the block's last
  kEventCount
};
const char* const kEventNames[kEventCount] = {
    "waiter-fast-path",   "signaller-drained", "linker-drained", "settle-spun",
    "linker-wait-spun",   "two-nodes-drained", "add-in-waking",  "signal-in-waking",
    "stop-before-commit", "stop-won",          "drainer-won",    "tombstone-skipped",
    "drainer-freed"};
unsigned long long g_events[kEventCount];
inline void cover(Event event) { ++g_events[event]; }

std::string coverage_report() { return model::coverage_line(kEventNames, g_events); }

struct StopBlock;

struct Node {
  rl::var<Node*> next;           // WaitNode::next (plain pointer in the code)
  rl::var<Node*> chunk_next;     // WaitNode::chunk_next (the combined link's own chain)
  rl::atomic<unsigned> woken;    // WaitNode::woken (the resume hand-off)
  rl::atomic<unsigned> linking;  // WaitNode::linking
  rl::var<int> alive;            // 0 once the waiter is done with the node
  Node* shadow_next = nullptr;   // unmodelled copy of `next`, for the coverage counters only
  StopBlock* block = nullptr;    // set: a stoppable wait's node (WaitNode::Kind::Stoppable)
};

// The pooled StopBlock of a stoppable counter wait (src/stop_wake.cpp): the node it links, its
// claim word (StopWake::state), its two references, and the std::stop_callback's own state.
struct StopBlock {
  static constexpr unsigned kIdle = 0, kLinked = 1, kStopped = 2, kWoken = 3;
  Node node;  // the node on the counter's list (the waiter's node stays apart)
  rl::atomic<unsigned> state;
  rl::atomic<unsigned> refs;  // the list's and the waiter's
  rl::var<Node*> waiter;      // StopWake::node: the waiter's own node, set by the commit
  rl::var<int> cancelled;     // StopWake::cancelled
  rl::var<int> alive;         // 0 once given back to a cache (then reused)
  rl::atomic<int> wakes;      // unmodelled check: the waiter is woken once
  // std::stop_callback: 0 registered, 1 running, 2 returned, 3 deregistered first.
  rl::atomic<int> callback;
};
inline void touch(StopBlock& b) { RL_ASSERT(b.alive($) == 1); }

struct Counter {
  rl::atomic<i64> value;      // Counter::value_
  rl::atomic<Node*> waiters;  // Counter::waiters_
  rl::var<int> alive;         // 0 once the waiter destroyed the counter
};

inline void touch(Counter& c) { RL_ASSERT(c.alive($) == 1); }
inline void touch(Node& n) { RL_ASSERT(n.alive($) == 1); }

inline void init(Counter& c, i64 value) {
  c.value.store(value, rl::mo_relaxed, $);
  c.waiters.store(nullptr, rl::mo_relaxed, $);
  c.alive($) = 1;
}

inline void init(Node& n) {
  n.next($) = nullptr;
  n.chunk_next($) = nullptr;
  n.woken.store(0, rl::mo_relaxed, $);
  n.linking.store(0, rl::mo_relaxed, $);
  n.alive($) = 1;
}

// StopWait::arm_counter: a fresh block, two references, the callback registered.
inline void init(StopBlock& b) {
  init(b.node);
  b.node.block = &b;
  b.state.store(StopBlock::kIdle, rl::mo_relaxed, $);
  b.refs.store(2, rl::mo_relaxed, $);
  b.waiter($) = nullptr;
  b.cancelled($) = 0;
  b.alive($) = 1;
  b.wakes.store(0, rl::mo_relaxed, $);
  b.callback.store(0, rl::mo_relaxed, $);
}

using model::spin;

// A fiber waiter and its linker thread (Protocol::fiber_wait and Protocol::linker).
struct LinkerChannel {
  rl::atomic<int> handoff;  // 1: the waiter switched out, its node is the linker's to link
  rl::atomic<int> skip;     // 1: the wait returned, the linker has nothing (more) to do
  void init() {
    handoff.store(0, rl::mo_relaxed, $);
    skip.store(0, rl::mo_relaxed, $);
  }
};

// The two jobs of the reuse models: round 1's and round 2's, queued once round 1 is over.
struct TwoRounds {
  rl::atomic<int> job2_queued;
  rl::var<int> data1;  // written by round 1's job, read by the waiter after its wait
  rl::var<int> data2;  // the same for round 2
  void init() {
    job2_queued.store(0, rl::mo_relaxed, $);
    data1($) = 0;
    data2($) = 0;
  }
};

template <unsigned B>
struct Protocol {
  static constexpr bool has(Bug bug) { return (B & bug) != 0; }

  static constexpr rl::memory_order kPushCas =
      has(kPushCasRelease) ? rl::mo_release : rl::mo_acq_rel;
  static constexpr rl::memory_order kDrain = has(kDrainAcquire) ? rl::mo_acquire : rl::mo_acq_rel;
  static constexpr rl::memory_order kLinkingClear =
      has(kLinkingRelaxed) ? rl::mo_relaxed : rl::mo_release;
  static constexpr rl::memory_order kRestore =
      has(kRestoreRelaxed) ? rl::mo_relaxed : rl::mo_release;
  static constexpr rl::memory_order kSignalCas =
      has(kSignalCasRelease) ? rl::mo_release : rl::mo_acq_rel;

  // Counter::add: relaxed fetch_add; a previous count below zero outside the waking range is
  // misuse (the code throws; the models never do it).
  static void add(Counter& c, i64 n) {
    touch(c);
    const i64 previous = c.value.fetch_add(n, rl::mo_relaxed, $);
    if (is_waking(previous)) cover(kAddInWaking);
    RL_ASSERT(previous >= 0 || is_waking(previous));
  }

  // CounterWaitList::load_settled.
  static i64 load_settled(Counter& c) {
    touch(c);
    i64 value = c.value.load(rl::mo_acquire, $);
    if (!has(kNoSentinel) && is_waking(value)) cover(kSettleSpun);
    while (!has(kNoSentinel) && is_waking(value)) {
      spin();
      touch(c);
      value = c.value.load(rl::mo_acquire, $);
    }
    return value;
  }

  // wake_list: read next before making the node runnable (its waiter may then reuse or destroy
  // it); the woken store is the waker's last touch of the node. Like run_chain, which cuts its
  // chunks there, the waker writes `next` of the nodes it drained.
  static void wake_list(Node* head) {
    if (head != nullptr && head->shadow_next != nullptr) cover(kTwoNodesDrained);
    while (head != nullptr) {
      touch(*head);
      Node* next = nullptr;
      if (!has(kNextAfterWake)) {
        next = head->next($);
        head->next($) = nullptr;
      }
      if (head->block != nullptr) {  // a stoppable wait's node: claim it, or skip a tombstone
        Node* const waiter = take_stoppable(*head->block);
        if (waiter != nullptr) waiter->woken.store(1, rl::mo_release, $);
        head = next;
        continue;
      }
      head->woken.store(1, rl::mo_release, $);
      if (has(kNextAfterWake)) {
        touch(*head);
        next = head->next($);
      }
      head = next;
    }
  }

  // --- The stoppable counter wait (src/stop_wake.cpp) ---------------------------------------
  static constexpr rl::memory_order kClaim = has(kClaimRelaxed) ? rl::mo_relaxed : rl::mo_acq_rel;
  static constexpr rl::memory_order kClaimFail =
      has(kClaimRelaxed) ? rl::mo_relaxed : rl::mo_acquire;
  static constexpr rl::memory_order kClaimStore =
      has(kClaimRelaxed) ? rl::mo_relaxed : rl::mo_release;

  // Drops one of the block's two references; the last gives the block back (to be reused).
  static void drop(StopBlock& b) {
    touch(b);
    if (b.refs.fetch_sub(1, rl::mo_acq_rel, $) == 1) {
      b.alive($) = 0;
    }
  }

  // A check of the model, not of the code: the waiter is woken exactly once.
  static void count_wake(StopBlock& b) {
    touch(b);
    RL_ASSERT(b.wakes.fetch_add(1, rl::mo_relaxed, $) == 0);
  }

  // take_stoppable (wake_list.cpp): the drainer that meets a stoppable node claims it
  // (linked -> woken); either way it drops the list's reference. Returns the waiter's own node
  // to wake, or nullptr for a tombstone. The caller read the node's `next` before.
  static Node* take_stoppable(StopBlock& b) {
    touch(b);
    bool won = false;
    if (has(kClaimByStore)) {
      won = b.state.load(kClaimFail, $) == StopBlock::kLinked;
      if (won) b.state.store(StopBlock::kWoken, kClaimStore, $);
    } else {
      unsigned expected = StopBlock::kLinked;
      won = b.state.compare_exchange_strong(expected, StopBlock::kWoken, kClaim, $, kClaimFail, $);
      RL_ASSERT(won || expected == StopBlock::kStopped);  // a linked node was committed
    }
    Node* waiter = nullptr;
    if (won) {
      cover(kDrainerWon);
      count_wake(b);
      waiter = b.waiter($);
    } else {
      cover(kTombstoneSkipped);
    }
    // No wait for the block's linker here: the waiter drops its reference only after it
    // waited for that linker (disarm), so no drop frees a block whose linker still runs.
    // The waiter's wait is the one needed (kNoDisarmLinkerWait).
    if (!has(kOneReference)) {
      touch(b);
      if (b.refs.fetch_sub(1, rl::mo_acq_rel, $) == 1) {
        cover(kDrainerFreed);
        b.alive($) = 0;
      }
    }
    return waiter;
  }

  // StopWake::commit by the linker, before the push: idle -> linked. False: the stop came
  // first (nothing is linked; the waiter goes on and throws Cancelled).
  static bool commit(StopBlock& b, Node& waiter) {
    touch(b);
    b.waiter($) = &waiter;
    unsigned expected = StopBlock::kIdle;
    if (b.state.compare_exchange_strong(expected, StopBlock::kLinked, kClaim, $, kClaimFail, $)) {
      return true;
    }
    b.cancelled($) = 1;
    return false;
  }

  // The std::stop_callback's invocation on the stopping thread (StopWake::on_stop, lock-free
  // form): exchanges kStopped in; the one that finds kLinked wakes the waiter itself and leaves
  // the node on the list as a tombstone.
  static void stop_callback(StopBlock& b) {
    int registered = 0;
    // acquire/release: the callback's own state (std::stop_callback's, not ours to order).
    if (!b.callback.compare_exchange_strong(registered, 1, rl::mo_acq_rel, $, rl::mo_acquire, $)) {
      return;  // deregistered already: the waiter returned
    }
    touch(b);
    const unsigned old = b.state.exchange(StopBlock::kStopped, kClaim, $);
    if (old == StopBlock::kIdle) cover(kStopBeforeCommit);
    if (old == StopBlock::kLinked) {
      cover(kStopWon);
      count_wake(b);
      Node* const waiter = b.waiter($);
      b.cancelled($) = 1;  // before the wake: the waiter reads it once woken
      touch(*waiter);
      waiter->woken.store(1, rl::mo_release, $);
    }
    b.callback.store(2, rl::mo_release, $);  // returned: a waiting deregistration goes on
  }

  // StopWait::disarm of the waiter, woken: waits for the block's linker, deregisters the
  // callback (waiting for one still running), reads how the wait ended, drops its reference.
  // Returns true when the stop ended the wait.
  static bool disarm(StopBlock& b) {
    if (!has(kNoDisarmLinkerWait)) wait_for_linker(b.node);
    int registered = 0;
    if (!b.callback.compare_exchange_strong(registered, 3, rl::mo_acq_rel, $, rl::mo_acquire, $)) {
      while (b.callback.load(rl::mo_acquire, $) != 2) spin();
    }
    touch(b);
    const bool cancelled = b.cancelled($) != 0;
    if (has(kOneReference)) {
      b.alive($) = 0;  // gives the block back alone: the list may still hold it
    } else {
      drop(b);
    }
    return cancelled;
  }

  // CounterWaitList::link: link_chunk of one node.
  static void link(Counter& c, Node& n) {
    touch(n);
    n.linking.store(1, rl::mo_relaxed, $);
    link_chunk(c, n, n, 1);
  }

  // CounterWaitList::link_chunk: `count` nodes, `first` … `last` joined through `next` and
  // `chunk_next`, each with `linking` already 1, pushed with one CAS.
  static void link_chunk(Counter& c, Node& first, Node& last, int count) {
    touch(c);
    Node* head = c.waiters.load(rl::mo_relaxed, $);
    for (;;) {
      touch(last);
      last.next($) = head;
      last.shadow_next = head;
      touch(c);
      if (c.waiters.compare_exchange_weak(head, &first, kPushCas, $, rl::mo_relaxed, $)) break;
    }
    Node* drained = nullptr;
    if (!has(kNoRecheck) && load_settled(c) == 0) {
      touch(c);
      drained = c.waiters.exchange(nullptr, kDrain, $);
      if (drained != nullptr) cover(kLinkerDrained);
    }
    Node* n = &first;
    for (int i = 1; i < count; ++i) {
      touch(*n);
      Node* next = nullptr;
      if (!has(kNextAfterClear)) next = has(kChunkByNext) ? n->next($) : n->chunk_next($);
      n->linking.store(0, kLinkingClear, $);
      if (has(kNextAfterClear)) {
        touch(*n);
        next = n->chunk_next($);
      }
      n = next;
    }
    touch(*n);
    n->linking.store(0, kLinkingClear, $);
    wake_list(drained);
  }

  // CounterWaitList::wait_for_linker.
  static void wait_for_linker(Node& n) {
    if (has(kNoLinkerWait)) return;
    bool spun = false;
    while (n.linking.load(rl::mo_acquire, $) != 0) {
      spun = true;
      spin();
    }
    if (spun) cover(kLinkerWaitSpun);
  }

  // CounterWaitList::signal.
  static void signal(Counter& c) {
    if (has(kNoSentinel)) {
      // What the sentinel replaced (FiberTaskingLib-style): the count reaches 0 first, the
      // list is drained after it.
      touch(c);
      if (c.value.fetch_sub(1, rl::mo_acq_rel, $) != 1) return;
      touch(c);
      wake_list(c.waiters.exchange(nullptr, kDrain, $));
      return;
    }
    touch(c);
    i64 value = c.value.load(rl::mo_relaxed, $);
    i64 next = 0;
    bool final_signal = false;
    for (;;) {
      if (value > 1 || (is_waking(value) && value > kWaking)) {
        next = value - 1;
        final_signal = false;
      } else if (value == 1) {
        next = kWaking;
        final_signal = true;
      } else {
        RL_ASSERT(!"signal on a counter with no outstanding unit");
      }
      touch(c);
      if (c.value.compare_exchange_weak(value, next, kSignalCas, $, rl::mo_relaxed, $)) break;
    }
    if (is_waking(value) && value > kWaking) cover(kSignalInWaking);
    if (has(kFinalByNext)) final_signal = (next == kWaking);
    if (!final_signal) return;
    touch(c);
    Node* drained = c.waiters.exchange(nullptr, kDrain, $);
    if (drained != nullptr) cover(kSignallerDrained);
    touch(c);
    c.value.fetch_sub(kWaking, kRestore, $);  // last touch of the counter
    wake_list(drained);
  }

  // A woken waiter: wait for the resume hand-off, then for the linker (this_fiber.cpp).
  static void await_woken(Node& n) {
    while (n.woken.load(rl::mo_acquire, $) == 0) spin();
    wait_for_linker(n);
  }

  // Stackful fiber wait (this_fiber.cpp wait_on_fiber): the fiber checks the count, switches
  // out, and the *next* fiber links its node (fiber_switch.cpp run_handoff) — modelled as a
  // separate linker thread that receives the node through `handoff` (the switch orders the
  // waiter's writes before the link). Returns when the wait returns.
  static void fiber_wait(Counter& c, Node& n, LinkerChannel& channel) {
    if (load_settled(c) == 0) {
      cover(kWaiterFastPath);
      return;
    }
    n.next($) = nullptr;
    channel.handoff.store(1, rl::mo_release, $);
    await_woken(n);
  }

  // The linker side of fiber_wait: runs on another thread (or later on the same one).
  static void linker(Counter& c, Node& n, LinkerChannel& channel) {
    for (;;) {
      if (channel.handoff.load(rl::mo_acquire, $) == 1) break;
      if (channel.skip.load(rl::mo_acquire, $) == 1) return;  // the waiter took the fast path
      spin();
    }
    link(c, n);
  }

  // Thread wait (CounterWaitList::wait_on_thread): the waiter links its own node.
  static void thread_wait(Counter& c, Node& n) {
    if (load_settled(c) == 0) {
      cover(kWaiterFastPath);
      return;
    }
    link(c, n);
    while (n.woken.load(rl::mo_acquire, $) == 0) spin();
  }

  // A fiber waiter's wait (round 1 of the reuse models too): once it returns, the waiter tells
  // its linker that it no longer needs it (if the fast path left the linker waiting).
  static void fiber_wait_done(Counter& c, Node& n, LinkerChannel& channel) {
    fiber_wait(c, n, channel);
    channel.skip.store(1, rl::mo_release, $);  // release: pairs with the acquire in linker()
  }

  // Round 2 of the reuse models, the waiter's side: add a unit, queue its job (release/acquire
  // hand-off, as the queues do), then wait as a thread with the same node (a fiber reuses its
  // node).
  static void second_round(Counter& c, Node& n, TwoRounds& rounds) {
    add(c, 1);
    rounds.job2_queued.store(1, rl::mo_release, $);  // release: pairs with run_two_jobs' acquire
    n.next($) = nullptr;
    n.woken.store(0, rl::mo_relaxed, $);
    thread_wait(c, n);
  }

  // The job runner of the reuse models: round 1's job, then round 2's once it is queued.
  static void run_two_jobs(Counter& c, TwoRounds& rounds) {
    rounds.data1($) = 1;
    signal(c);
    // acquire: pairs with second_round's release store.
    while (rounds.job2_queued.load(rl::mo_acquire, $) == 0) spin();
    rounds.data2($) = 1;
    signal(c);
  }

  // Counter::~Counter's checks, then the counter is gone.
  static void destroy(Counter& c) {
    touch(c);
    RL_ASSERT(c.waiters.load(rl::mo_acquire, $) == nullptr);
    RL_ASSERT(c.value.load(rl::mo_relaxed, $) == 0);
    c.alive($) = 0;
  }
};

// ---------------------------------------------------------------------------------------------
// Model 1: one fiber waiter W, its linker L (another thread), one final signaller S.
// count = 1. W destroys the counter as soon as its wait returns.
template <unsigned B>
struct FiberWait : rl::test_suite<FiberWait<B>, 3> {
  using P = Protocol<B>;
  Counter c;
  Node node;
  LinkerChannel channel;
  rl::var<int> job_data;

  void before() {
    init(c, 1);
    init(node);
    channel.init();
    job_data($) = 0;
  }

  void thread(unsigned index) {
    if (index == 0) {  // W
      P::fiber_wait_done(c, node, channel);
      RL_ASSERT(job_data($) == 1);  // the job's writes are visible after the wait
      P::destroy(c);
    } else if (index == 1) {  // L
      P::linker(c, node, channel);
    } else {  // S: the job
      job_data($) = 1;
      P::signal(c);
    }
  }
};

// Model 2: a thread waiter W (links its own node) and two signallers; count = 2.
template <unsigned B>
struct TwoSignallers : rl::test_suite<TwoSignallers<B>, 3> {
  using P = Protocol<B>;
  Counter c;
  Node node;
  rl::var<int> data1;
  rl::var<int> data2;

  void before() {
    init(c, 2);
    init(node);
    data1($) = 0;
    data2($) = 0;
  }

  void thread(unsigned index) {
    if (index == 0) {  // W
      P::thread_wait(c, node);
      RL_ASSERT(data1($) == 1);
      RL_ASSERT(data2($) == 1);
      node.alive($) = 0;  // the node lived on W's stack
      P::destroy(c);
    } else if (index == 1) {
      data1($) = 1;
      P::signal(c);
    } else {
      data2($) = 1;
      P::signal(c);
    }
  }
};

// Model 3: two thread waiters (two nodes in the Treiber stack) and one final signaller.
// W1 owns the counter: it destroys it once its own wait and W2's wait returned.
template <unsigned B>
struct TwoWaiters : rl::test_suite<TwoWaiters<B>, 3> {
  using P = Protocol<B>;
  Counter c;
  Node node1;
  Node node2;
  rl::atomic<int> w2_done;
  rl::var<int> job_data;

  void before() {
    init(c, 1);
    init(node1);
    init(node2);
    w2_done.store(0, rl::mo_relaxed, $);
    job_data($) = 0;
  }

  void thread(unsigned index) {
    if (index == 0) {  // W1
      P::thread_wait(c, node1);
      RL_ASSERT(job_data($) == 1);
      node1.alive($) = 0;
      while (w2_done.load(rl::mo_acquire, $) == 0) spin();
      P::destroy(c);
    } else if (index == 1) {  // W2
      P::thread_wait(c, node2);
      RL_ASSERT(job_data($) == 1);
      node2.alive($) = 0;
      w2_done.store(1, rl::mo_release, $);
    } else {  // S
      job_data($) = 1;
      P::signal(c);
    }
  }
};

// Model 4: counter reuse. Round 1: W waits as a fiber (linker L on another thread), S signals.
// Round 2, after W's first wait returned: W adds a unit, queues the job to S (release/acquire
// hand-off, as the queues do), waits as a thread with the *same* node (a fiber reuses its
// node), then destroys the counter. The round-1 linker may still be running during round 2
// unless W waited for it.
// With kKeepCounter the counter is not destroyed at the end: then a round-1 linker that is
// still running during round 2 shows up by its effect on round 2 instead (after() checks the
// final state).
template <unsigned B>
struct Reuse : rl::test_suite<Reuse<B>, 3> {
  using P = Protocol<B>;
  Counter c;
  Node node;
  LinkerChannel channel;
  TwoRounds rounds;

  void before() {
    init(c, 1);
    init(node);
    channel.init();
    rounds.init();
  }

  void after() {
    if (!P::has(kKeepCounter)) return;
    RL_ASSERT(c.value.load(rl::mo_relaxed, $) == 0);
    RL_ASSERT(c.waiters.load(rl::mo_relaxed, $) == nullptr);
  }

  void thread(unsigned index) {
    if (index == 0) {  // W
      P::fiber_wait_done(c, node, channel);
      RL_ASSERT(rounds.data1($) == 1);
      P::second_round(c, node, rounds);  // reuses the counter and the node
      RL_ASSERT(rounds.data2($) == 1);
      if (!P::has(kKeepCounter)) P::destroy(c);
    } else if (index == 1) {  // L: links W's node in round 1
      P::linker(c, node, channel);
    } else {  // S: runs the job of each round
      P::run_two_jobs(c, rounds);
    }
  }
};

// Model 5: add during drain. count = 1 (job S1). The owner O adds a unit for a second job J
// and queues it, then waits (thread wait) and destroys the counter. O's add may land before
// S1's signal, after it, or while S1 is between its CAS to kWaking and its restore; J's
// signal of that unit must then not become a second drainer.
template <unsigned B>
struct AddDuringDrain : rl::test_suite<AddDuringDrain<B>, 3> {
  using P = Protocol<B>;
  Counter c;
  Node node;
  rl::atomic<int> job_queued;
  rl::var<int> data1;
  rl::var<int> data2;

  void before() {
    init(c, 1);
    init(node);
    job_queued.store(0, rl::mo_relaxed, $);
    data1($) = 0;
    data2($) = 0;
  }

  void thread(unsigned index) {
    if (index == 0) {  // O
      P::add(c, 1);
      job_queued.store(1, rl::mo_release, $);
      P::thread_wait(c, node);
      RL_ASSERT(data1($) == 1);
      RL_ASSERT(data2($) == 1);
      P::destroy(c);
    } else if (index == 1) {  // S1
      data1($) = 1;
      P::signal(c);
    } else {  // J
      while (job_queued.load(rl::mo_acquire, $) == 0) spin();
      data2($) = 1;
      P::signal(c);
    }
  }
};

// Model 6: two waiters and reuse. Round 1: W1 waits as a thread, W2 as a fiber whose linker
// L2 runs on another thread; S runs the job. Round 2: once W1's wait returned *and* W2's wait
// returned (the documented reuse rule), W1 adds a unit, queues it to S, waits again with the
// same node and destroys the counter. 4 threads.
template <unsigned B>
struct TwoWaitersReuse : rl::test_suite<TwoWaitersReuse<B>, 4> {
  using P = Protocol<B>;
  Counter c;
  Node node1;
  Node node2;
  LinkerChannel channel;
  rl::atomic<int> w2_done;
  TwoRounds rounds;

  void before() {
    init(c, 1);
    init(node1);
    init(node2);
    channel.init();
    w2_done.store(0, rl::mo_relaxed, $);
    rounds.init();
  }

  void await_w2() {
    while (w2_done.load(rl::mo_acquire, $) == 0) spin();
  }

  void thread(unsigned index) {
    if (index == 0) {  // W1
      P::thread_wait(c, node1);
      RL_ASSERT(rounds.data1($) == 1);
      if (!P::has(kEarlyReuse)) await_w2();
      P::second_round(c, node1, rounds);
      RL_ASSERT(rounds.data2($) == 1);
      await_w2();
      P::destroy(c);
    } else if (index == 1) {  // W2
      P::fiber_wait_done(c, node2, channel);
      RL_ASSERT(rounds.data1($) == 1);
      w2_done.store(1, rl::mo_release, $);
    } else if (index == 2) {  // L2
      P::linker(c, node2, channel);
    } else {  // S
      P::run_two_jobs(c, rounds);
    }
  }
};

// Model 7: waits combined per chunk. Two coroutines of one wake chain's chunk wait on the
// counter: each checks the count on the chunk's worker L and, if it is not zero, suspends with
// its node held by L (Worker::deferred_link_counter); at the end of the chunk L links the held
// nodes with one CAS (link_chunk). A coroutine that saw zero resumes at once (its node marked
// woken here). R resumes the woken coroutines wherever they were woken: it waits for each
// node's wake and linker, drops the node, then destroys the counter. S is the final signaller.
// With kThreads = 4, a fourth thread W is another waiter that links its own node (link()) at
// the same time, so the splice may land on a list that already holds a node, race W's push,
// and share a drain with it; R then waits for W's node too.
template <unsigned B, unsigned kThreads = 3>
struct CombinedLinks : rl::test_suite<CombinedLinks<B, kThreads>, kThreads> {
  using P = Protocol<B>;
  Counter c;
  Node node1;
  Node node2;
  Node node3;  // W's (kThreads == 4)
  rl::var<int> job_data;

  void before() {
    init(c, 1);
    init(node1);
    init(node2);
    init(node3);
    job_data($) = 0;
  }

  // One coroutine's co_await on L: suspends into the held list, or resumes at once.
  void check_and_hold(Node& n, Node*& first, Node*& last, int& held) {
    if (P::load_settled(c) == 0) {
      cover(kWaiterFastPath);
      n.woken.store(1, rl::mo_release, $);  // resumed inline: R sees it as woken, no linker
      return;
    }
    n.linking.store(1, rl::mo_relaxed, $);  // defer_link
    n.next($) = first;
    n.chunk_next($) = first;
    if (last == nullptr) last = &n;
    first = &n;
    ++held;
  }

  void thread(unsigned index) {
    if (index == 0) {  // L: the chunk's worker
      Node* first = nullptr;
      Node* last = nullptr;
      int held = 0;
      check_and_hold(node1, first, last, held);
      check_and_hold(node2, first, last, held);
      if (held != 0) P::link_chunk(c, *first, *last, held);
    } else if (index == 1) {  // R: the resumed waiters
      for (Node* n : {&node2, &node1, &node3}) {
        if (n == &node3 && kThreads == 3) continue;
        while (n->woken.load(rl::mo_acquire, $) == 0) spin();
        P::wait_for_linker(*n);
        RL_ASSERT(job_data($) == 1);
        n->alive($) = 0;
      }
      P::destroy(c);
    } else if (index == 2) {  // S
      job_data($) = 1;
      P::signal(c);
    } else {  // W: a waiter of its own, linking one node
      if (P::load_settled(c) == 0) {
        node3.woken.store(1, rl::mo_release, $);  // returned at once: no linker
      } else {
        P::link(c, node3);
      }
    }
  }
};

// Model 8: the lock-free stoppable counter wait (src/stop_wake.cpp, docs/decisions.md "A
// counter wait of a job with a stop token"). The waiter's block B (its node, claim word and two
// references) is armed before the link. L, the linker, sets B's `linking`, commits B (idle ->
// linked) and links B's node — with kChunk, in one combined link with a plain waiter's node P
// (first B, last P), so the drain cuts the chunk between them. S is the final signaller (its
// drain claims B: linked -> woken, or skips a tombstone). T requests the stop (the callback:
// linked -> stopped, and it wakes the waiter itself). W is the waiter (B's and P's): once its
// own node R is woken it disarms (waits for B's linker, deregisters the callback, reads
// `cancelled`, drops its reference), waits for P, then joins the counter (~Counter's
// join_pending: a stopped wait returns before the count is zero) and destroys it.
template <unsigned B, bool kChunk>
struct StoppableWait : rl::test_suite<StoppableWait<B, kChunk>, 4> {
  using P = Protocol<B>;
  Counter c;
  StopBlock block;
  Node waiter;  // the waiter's own node (the awaiter's, the fiber's): only ever woken
  Node plain;   // a plain waiter's node, linked with B in one chunk (kChunk)
  rl::var<int> job_data;

  void before() {
    init(c, 1);
    init(block);
    init(waiter);
    init(plain);
    job_data($) = 0;
  }

  void after() {
    // Every reference dropped: the block went back (also when the stop won).
    RL_ASSERT(block.refs.load(rl::mo_relaxed, $) == 0 || P::has(kOneReference));
  }

  void link() {
    Node& n = block.node;
    n.linking.store(1, rl::mo_relaxed, $);  // before the commit: a stop may wake W at once
    if (!P::commit(block, waiter)) {        // the stop came first: link nothing
      n.linking.store(0, rl::mo_release, $);
      P::drop(block);
      waiter.woken.store(1, rl::mo_release, $);  // the waiter goes on (throws Cancelled)
      if (kChunk) P::link(c, plain);             // the chunk's other wait links alone
      return;
    }
    if (!kChunk) {
      P::link(c, n);
      return;
    }
    plain.linking.store(1, rl::mo_relaxed, $);  // defer_link of the chunk's two waits
    n.next($) = &plain;
    n.chunk_next($) = &plain;
    n.shadow_next = &plain;
    P::link_chunk(c, n, plain, 2);
  }

  void thread(unsigned index) {
    if (index == 0) {  // L
      link();
    } else if (index == 1) {  // S
      job_data($) = 1;
      P::signal(c);
    } else if (index == 2) {  // T
      P::stop_callback(block);
    } else {  // W
      while (waiter.woken.load(rl::mo_acquire, $) == 0) spin();
      const bool cancelled = P::disarm(block);
      if (!cancelled) RL_ASSERT(job_data($) == 1);  // woken by the drain: sees the job's data
      waiter.alive($) = 0;
      if (kChunk) {
        while (plain.woken.load(rl::mo_acquire, $) == 0) spin();
        P::wait_for_linker(plain);
        plain.alive($) = 0;
      }
      while (P::load_settled(c) != 0) spin();  // ~Counter's join_pending
      RL_ASSERT(job_data($) == 1);
      P::destroy(c);
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  using model::kBound2;
  using model::kBound3;
  using model::kBound4;
  using model::kRandom;
  model::Runner runner("counter_model", argc, argv);
  runner.coverage = coverage_report;

  runner.pass<FiberWait<kCorrect>>("fiber_wait", {kBound3, kRandom});
  runner.pass<TwoSignallers<kCorrect>>("two_signallers", {kBound4, kRandom});
  runner.pass<TwoWaiters<kCorrect>>("two_waiters", {kBound2, kRandom});
  runner.pass<Reuse<kCorrect>>("reuse", {kBound2, kRandom});
  runner.pass<Reuse<kKeepCounter>>("reuse_keep_counter", {kRandom});
  runner.pass<AddDuringDrain<kCorrect>>("add_during_drain", {kBound3, kRandom});
  runner.pass<TwoWaitersReuse<kCorrect>>("two_waiters_reuse", {kRandom});
  runner.pass<CombinedLinks<kCorrect>>("combined_links", {kBound3, kRandom});
  runner.pass<CombinedLinks<kCorrect, 4>>("combined_links_with_linker", {kRandom});
  runner.pass<StoppableWait<kCorrect, false>>("stoppable_wait", {kBound2, kRandom});
  runner.pass<StoppableWait<kCorrect, true>>("stoppable_wait_chunk", {kBound2, kRandom});

  // Negative variants: each must be caught.
  const char* const lost_wake_up = "lost wake-up (LIVELOCK)";
  runner.fail<FiberWait<kPushCasRelease>>("neg_push_cas_release", lost_wake_up);
  runner.fail<FiberWait<kDrainAcquire>>("neg_drain_acquire", lost_wake_up);
  runner.fail<FiberWait<kPushCasRelease | kDrainAcquire>>("neg_push_release_drain_acquire",
                                                          lost_wake_up);
  runner.fail<FiberWait<kNoRecheck>>("neg_no_recheck", lost_wake_up);
  runner.fail<FiberWait<kNoLinkerWait>>("neg_no_linker_wait",
                                        "linker touches the destroyed counter");
  runner.fail<Reuse<kNoLinkerWait>>("neg_reuse_no_linker_wait",
                                    "round-1 linker's re-check races with the destruction");
  runner.fail<Reuse<kNoLinkerWait | kKeepCounter>>(
      "neg_reuse_keep_no_linker_wait",
      "round-1 linker drains the round-2 node: the waiter returns early");
  runner.fail<FiberWait<kLinkingRelaxed>>("neg_linking_relaxed",
                                          "linker's counter access races with the destruction");
  runner.fail<FiberWait<kNoSentinel>>("neg_no_sentinel", "signaller drains a destroyed counter");
  runner.fail<FiberWait<kRestoreRelaxed>>("neg_restore_relaxed",
                                          "drain races with the destruction");
  runner.fail<TwoSignallers<kSignalCasRelease>>("neg_signal_cas_release",
                                                "first job's data races with the waiter");
  runner.fail<TwoWaiters<kNextAfterWake>>("neg_next_after_wake", "waker reads a dead node");
  runner.fail<AddDuringDrain<kFinalByNext>>("neg_final_by_next", "second drainer");
  runner.fail<CombinedLinks<kNextAfterClear>>("neg_combined_next_after_clear",
                                              "linker reads a node its waiter already dropped");
  runner.fail<CombinedLinks<kNoRecheck>>("neg_combined_no_recheck", lost_wake_up);
  runner.fail<CombinedLinks<kNoRecheck, 4>>("neg_combined_with_linker_no_recheck", lost_wake_up);
  runner.fail<CombinedLinks<kChunkByNext>>("neg_combined_walk_by_next",
                                           "linker reads `next` while the waker cuts it");
  runner.fail<CombinedLinks<kLinkingRelaxed>>("neg_combined_linking_relaxed",
                                              "linker's counter access races with the destruction");
  runner.fail<TwoWaitersReuse<kEarlyReuse>>(
      "neg_reuse_before_all_waits_returned",
      "the other waiter's late linker drains the round-2 node (the reuse rule is needed)");
  runner.fail<StoppableWait<kClaimRelaxed, false>>(
      "neg_stoppable_claim_relaxed", "the stop reads the waiter's node without the commit's order");
  runner.fail<StoppableWait<kClaimByStore, true>>("neg_stoppable_claim_by_store",
                                                  "the drainer and the stop both wake the waiter");
  runner.fail<StoppableWait<kNoDisarmLinkerWait, false>>(
      "neg_stoppable_no_disarm_linker_wait",
      "the stopped waiter destroys the counter under its linker's re-check");
  runner.fail<StoppableWait<kOneReference, true>>(
      "neg_stoppable_one_reference", "the drainer reads a tombstone already given back");
  return runner.finish();
}
