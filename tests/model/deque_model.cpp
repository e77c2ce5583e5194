// Relacy model of the Chase-Lev work-stealing deque (src/work_stealing_deque.hpp), with the
// exact memory orders of the code: Lê, Pop, Cohen, Zappa Nardelli (PPoPP 2013) Figure 1, with
// push's fence folded into its store and pop's accesses strengthened (the file's DEPARTUREs):
//   push:  bottom relaxed load, ring relaxed load, top acquire load only when the owner's copy
//          of top (top_seen_) says "full", slot relaxed store, bottom *release* store (paper:
//          release fence + relaxed store)
//   pop:   bottom relaxed load, ring relaxed load, bottom *release* store (paper: relaxed),
//          seq_cst fence, top *acquire* load (paper: relaxed; also refreshes top_seen_), slot
//          relaxed load, last item: top CAS seq_cst (failure relaxed), bottom relaxed restore
//   steal: top acquire load, seq_cst fence, bottom acquire load (as the paper), ring *acquire*
//          load (paper: consume), slot relaxed load, top CAS seq_cst (fail relaxed)
//   grow:  new ring's slots initialised and copied with relaxed stores, ring *release* store
//
// Checks: every pushed item is taken exactly once (by pop, steal, or the final drain in
// after()); a successful claim never returns the empty value 0; the item's payload (an rl::var
// the owner writes before pushing) is visible to whoever takes it (else a data race).
//
// Negative variants weaken one order or drop one step (the `Bug` bits); each must be caught.

#include "model_harness.hpp"

namespace {

using i64 = std::int64_t;
using Item = std::uintptr_t;

enum Bug : unsigned {
  kCorrect = 0,
  kPushBottomRelaxed = 1u << 0,  // push: bottom store relaxed instead of release
  kPopNoFence = 1u << 1,         // pop: no seq_cst fence (release store, acquire load only)
  kStealNoFence = 1u << 2,       // steal: no seq_cst fence (two acquire loads only)
  kStealRingRelaxed = 1u << 3,   // steal: ring load relaxed instead of acquire
  kGrowRingRelaxed = 1u << 4,    // grow: ring store relaxed instead of release
  kPopNoCas = 1u << 5,           // pop: takes the last item without the CAS on top
  kPopFenceAcqRel = 1u << 6,     // pop: the fence weakened to acq_rel
  kStealFenceAcqRel = 1u << 7,   // steal: the fence weakened to acq_rel
};

// Coverage counters (unmodelled; see counter_model.cpp).
enum Event : unsigned {
  kGrew,          // push grew the ring
  kWrapped,       // push reused a slot of the ring (index >= capacity) without growing
  kPopLastWon,    // pop won the CAS for the last item
  kPopLastLost,   // pop lost the last item to a thief
  kStealLost,     // a steal saw an item but lost the CAS
  kStealNewRing,  // a steal read from a grown ring
  kEventCount
};
const char* const kEventNames[kEventCount] = {"grew",          "wrapped",    "pop-last-won",
                                              "pop-last-lost", "steal-lost", "steal-new-ring"};
unsigned long long g_events[kEventCount];
inline void cover(Event event) { ++g_events[event]; }

std::string coverage_report() { return model::coverage_line(kEventNames, g_events); }

constexpr int kMaxItems = 8;
constexpr int kRings = 3;  // capacities 2, 4, 8

struct Ring {
  i64 capacity = 0;  // const after construction (plain, as in the code)
  rl::atomic<Item> slots[8];
  rl::atomic<Item>& slot(i64 index) { return slots[index & (capacity - 1)]; }
};

template <unsigned B>
struct Deque {
  static constexpr bool has(Bug bug) { return (B & bug) != 0; }

  Ring rings[kRings];
  int ring_count = 1;  // owner-only bookkeeping (rings_ in the code)
  rl::atomic<i64> top;
  rl::atomic<i64> bottom;
  rl::atomic<Ring*> ring;
  i64 top_seen = 0;  // owner-only copy of top (top_seen_ in the code)

  // The constructor (runs before the threads start).
  void init() {
    for (int r = 0; r < kRings; ++r) rings[r].capacity = i64{2} << r;
    for (i64 i = 0; i < rings[0].capacity; ++i) rings[0].slots[i].store(0, rl::mo_relaxed, $);
    ring_count = 1;
    top.store(0, rl::mo_relaxed, $);
    top_seen = 0;
    bottom.store(0, rl::mo_relaxed, $);
    ring.store(&rings[0], rl::mo_relaxed, $);
  }

  Ring* grow(Ring* old_ring, i64 t, i64 b) {
    RL_ASSERT(ring_count < kRings);
    Ring* const fresh = &rings[ring_count++];
    // make_unique<atomic[]>: value-initialised slots, written by the owner.
    for (i64 i = 0; i < fresh->capacity; ++i) fresh->slots[i].store(0, rl::mo_relaxed, $);
    for (i64 i = t; i < b; ++i) {
      fresh->slot(i).store(old_ring->slot(i).load(rl::mo_relaxed, $), rl::mo_relaxed, $);
    }
    ring.store(fresh, has(kGrowRingRelaxed) ? rl::mo_relaxed : rl::mo_release, $);
    cover(kGrew);
    return fresh;
  }

  void push(Item item) {
    const i64 b = bottom.load(rl::mo_relaxed, $);
    Ring* r = ring.load(rl::mo_relaxed, $);
    bool grew = false;
    if (b - top_seen > r->capacity - 1) {
      top_seen = top.load(rl::mo_acquire, $);
      if (b - top_seen > r->capacity - 1) {
        r = grow(r, top_seen, b);
        grew = true;
      }
    }
    if (!grew && b >= r->capacity) {
      cover(kWrapped);
    }
    r->slot(b).store(item, rl::mo_relaxed, $);
    bottom.store(b + 1, has(kPushBottomRelaxed) ? rl::mo_relaxed : rl::mo_release, $);
  }

  Item pop() {
    const i64 b = bottom.load(rl::mo_relaxed, $) - 1;
    Ring* const r = ring.load(rl::mo_relaxed, $);
    bottom.store(b, rl::mo_release, $);
    if (!has(kPopNoFence)) {
      rl::atomic_thread_fence(has(kPopFenceAcqRel) ? rl::mo_acq_rel : rl::mo_seq_cst, $);
    }
    i64 t = top.load(rl::mo_acquire, $);
    top_seen = t;
    if (t > b) {
      bottom.store(b + 1, rl::mo_relaxed, $);
      return 0;
    }
    Item item = r->slot(b).load(rl::mo_relaxed, $);
    if (t == b) {
      if (!has(kPopNoCas)) {
        if (!top.compare_exchange_strong(t, t + 1, rl::mo_seq_cst, $, rl::mo_relaxed, $)) {
          item = 0;
          cover(kPopLastLost);
        } else {
          cover(kPopLastWon);
        }
      }
      bottom.store(b + 1, rl::mo_relaxed, $);
    }
    return item;
  }

  Item steal() {
    i64 t = top.load(rl::mo_acquire, $);
    if (!has(kStealNoFence)) {
      rl::atomic_thread_fence(has(kStealFenceAcqRel) ? rl::mo_acq_rel : rl::mo_seq_cst, $);
    }
    const i64 b = bottom.load(rl::mo_acquire, $);
    if (t >= b) return 0;
    Ring* const r = ring.load(has(kStealRingRelaxed) ? rl::mo_relaxed : rl::mo_acquire, $);
    if (r != &rings[0]) cover(kStealNewRing);
    const Item item = r->slot(t).load(rl::mo_relaxed, $);
    if (!top.compare_exchange_strong(t, t + 1, rl::mo_seq_cst, $, rl::mo_relaxed, $)) {
      cover(kStealLost);
      return 0;
    }
    // A claimed index always holds a pushed (non-zero) item; 0 here means the item is lost.
    RL_ASSERT(item != 0);
    return item;
  }
};

// A scenario's script: `prefill` items pushed before the threads start (by the constructor's
// thread, so they are visible to all); then the owner runs `owner`, a string of 'p' (push the
// next item) and 'o' (pop), while `thieves` thieves call steal() `steals` times each.
struct Script {
  int prefill;
  const char* owner;
  int thieves;
  int steals;
};

// Runs a Script. after() drains what is left and checks that every item was taken exactly once.
template <unsigned B, const Script& S>
struct Scenario : rl::test_suite<Scenario<B, S>, 1 + S.thieves> {
  static constexpr int kItems = S.prefill + [] {
    int pushes = 0;
    for (const char* op = S.owner; *op != 0; ++op) pushes += *op == 'p' ? 1 : 0;
    return pushes;
  }();
  static_assert(kItems <= kMaxItems);

  Deque<B> deque;
  rl::var<int> payload[kMaxItems + 1];
  int taken[kMaxItems + 1] = {};  // unmodelled bookkeeping
  int pushed = 0;                 // owner-only

  void push_next() {
    ++pushed;
    payload[pushed]($) = pushed * 10;
    deque.push(static_cast<Item>(pushed));
  }

  void before() {
    deque.init();
    for (int i = 0; i <= kMaxItems; ++i) payload[i]($) = 0;
    for (int i = 0; i < S.prefill; ++i) push_next();
  }

  void take(Item item) {
    if (item == 0) return;
    RL_ASSERT(item <= static_cast<Item>(kItems));
    RL_ASSERT(payload[item]($) == static_cast<int>(item) * 10);  // published with the item
    ++taken[item];
    RL_ASSERT(taken[item] == 1);  // never taken twice
  }

  void thread(unsigned index) {
    if (index == 0) {  // owner
      for (const char* op = S.owner; *op != 0; ++op) {
        if (*op == 'p') {
          push_next();
        } else {
          take(deque.pop());
        }
      }
    } else {
      for (int s = 0; s < S.steals; ++s) take(deque.steal());
    }
  }

  void after() {
    const unsigned long long won = g_events[kPopLastWon];  // the drain is not a race: uncounted
    for (Item item = deque.pop(); item != 0; item = deque.pop()) take(item);
    g_events[kPopLastWon] = won;
    for (int i = 1; i <= kItems; ++i) RL_ASSERT(taken[i] == 1);  // none lost
  }
};

// The last item: the owner pushes 1 and pops it while a thief steals.
constexpr Script kLastItemScript{0, "po", 1, 1};
// Pushes racing steals: the owner pushes 1, 2 and pops twice; the thief steals twice.
constexpr Script kTwoItemsScript{0, "ppoo", 1, 2};
// Pops racing steals on a full deque (items 1, 2 already in): the owner pops twice, the thief
// steals twice. The store-buffering shape that needs the two seq_cst fences: the owner's pop
// of item 2 without a CAS vs. the thief's second steal.
constexpr Script kPopVsStealsScript{2, "oo", 1, 2};
// Growth: capacity 2, full (items 1, 2). The owner pushes 3 (grows to 4 unless a thief took
// item 1 first, then it wraps around into slot 0) and 4, then pops; two thieves steal twice each.
constexpr Script kGrowthScript{2, "ppo", 2, 2};
// Growing twice: capacity 2, full. The owner pushes 3 (2 -> 4), 4, 5 (4 -> 8 unless the thief
// took an item), then pops; one thief steals three times.
constexpr Script kGrowthTwiceScript{2, "pppo", 1, 3};

template <unsigned B>
using LastItem = Scenario<B, kLastItemScript>;
template <unsigned B>
using TwoItems = Scenario<B, kTwoItemsScript>;
template <unsigned B>
using PopVsSteals = Scenario<B, kPopVsStealsScript>;
template <unsigned B>
using Growth = Scenario<B, kGrowthScript>;
template <unsigned B>
using GrowthTwice = Scenario<B, kGrowthTwiceScript>;

}  // namespace

int main(int argc, char** argv) {
  using model::kBound3;
  using model::kBound4;
  using model::kBound6;
  using model::kFull;
  using model::kRandom;
  model::Runner runner("deque_model", argc, argv);
  runner.coverage = coverage_report;

  runner.pass<LastItem<kCorrect>>("last_item", {kFull, kRandom});
  runner.pass<TwoItems<kCorrect>>("two_items", {kBound4, kRandom});
  // Context-bound 6, not full: the two fences multiply the interleavings (a full search takes
  // about 14 million); every weakened fence below already fails at bound 4.
  runner.pass<PopVsSteals<kCorrect>>("pop_vs_steals", {kBound6, kRandom});
  runner.pass<Growth<kCorrect>>("growth_two_thieves", {kBound3, kRandom});
  runner.pass<GrowthTwice<kCorrect>>("growth_twice", {kBound4, kRandom});

  const char* const both_take = "owner and thief both take an item";
  const char* const unseen_ring = "thief reads a slot of the grown ring it cannot see";
  runner.fail<PopVsSteals<kPopNoFence>>("neg_pop_no_fence", both_take);
  runner.fail<PopVsSteals<kPopFenceAcqRel>>("neg_pop_fence_acq_rel", both_take);
  runner.fail<PopVsSteals<kStealNoFence>>("neg_steal_no_fence", both_take);
  runner.fail<PopVsSteals<kStealFenceAcqRel>>("neg_steal_fence_acq_rel", both_take);
  runner.fail<TwoItems<kPushBottomRelaxed>>("neg_push_bottom_relaxed",
                                            "thief reads an unpublished item");
  runner.fail<Growth<kStealRingRelaxed>>("neg_steal_ring_relaxed", unseen_ring);
  runner.fail<Growth<kGrowRingRelaxed>>("neg_grow_ring_relaxed", unseen_ring);
  runner.fail<LastItem<kPopNoCas>>("neg_pop_no_cas", "owner and thief both take the last item");
  return runner.finish();
}
