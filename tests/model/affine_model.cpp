// Relacy model of the gate of an attached thread's affine inbox (src/affine.cpp), with the
// exact memory orders of the code:
//   AffineEntry::AffineEntry -> enter(): add 1 to the gate, queue only if the generation read
//                               is the handle's (else take the 1 back and throw)
//   AffineEntry::~AffineEntry -> leave(): take the 1 back (release)
//   close_affine              -> close(): bump the generation, wait until no pusher is
//                               inside (acquire), then drain
// Two pushers race the detaching thread. The queue (moodycamel, and the pending counter, which
// counter_model checks) is modelled by one plain variable per pusher, written by the pusher
// before it leaves and read by the drain: a job admitted but missed by the drain fails the
// check in after(), and a drain that reads it without a happens-before edge is a data race.
// Negative variants weaken one step each (`Bug`); each must be reported. docs/model_checking.md.

#include "model_harness.hpp"

namespace {

using u64 = unsigned long long;

enum Bug : unsigned {
  kCorrect = 0,
  kLeaveRelaxed = 1u << 0,  // ~AffineEntry: `relaxed` instead of `release`
  kCloseNoWait = 1u << 1,   // close_affine: drains without waiting for the pushers inside
  kCheckFirst = 1u << 2,    // AffineEntry: reads the generation, then enters (load + add)
};

constexpr u64 kStep = u64{1} << 32;
constexpr u64 kInsideMask = kStep - 1;
constexpr u64 kAttached = 1;  // the generation of the attachment the pushers' handle names

template <unsigned B>
struct Gate : rl::test_suite<Gate<B>, 3> {
  rl::atomic<u64> gate;
  rl::var<int> queued[2];    // 1: pusher i's job is in the queue
  rl::atomic<int> admitted;  // pushers that queued a job (read in after())
  int drained = 0;           // jobs the drain found (the closing thread's)

  void before() {
    gate.store(kAttached * kStep, rl::mo_relaxed, $);
    queued[0]($) = 0;
    queued[1]($) = 0;
    admitted.store(0, rl::mo_relaxed, $);
    drained = 0;
  }
  void after() { RL_ASSERT(drained == admitted.load(rl::mo_relaxed, $)); }

  bool enter() {
    if (B & kCheckFirst) {
      if ((gate.load(rl::mo_relaxed, $) >> 32) != kAttached) return false;
      gate.fetch_add(1, rl::mo_relaxed, $);
      return true;
    }
    const u64 before = gate.fetch_add(1, rl::mo_relaxed, $);
    if ((before >> 32) != kAttached) {
      gate.fetch_sub(1, rl::mo_relaxed, $);
      return false;  // the code throws Error (AttachMisuse)
    }
    return true;
  }
  void leave() { gate.fetch_sub(1, (B & kLeaveRelaxed) ? rl::mo_relaxed : rl::mo_release, $); }

  void thread(unsigned index) {
    if (index < 2) {
      if (!enter()) return;
      queued[index]($) = 1;
      admitted.fetch_add(1, rl::mo_relaxed, $);
      leave();
      return;
    }
    gate.fetch_add(kStep, rl::mo_relaxed, $);
    if (!(B & kCloseNoWait)) {
      while ((gate.load(rl::mo_acquire, $) & kInsideMask) != 0) model::spin();
    }
    for (rl::var<int>& job : queued) drained += job($);
  }
};

}  // namespace

int main(int argc, char** argv) {
  model::Runner runner("affine_model", argc, argv);
  runner.pass<Gate<kCorrect>>("affine_gate", {model::kFull, model::kRandom});
  runner.fail<Gate<kLeaveRelaxed>>("neg_leave_relaxed",
                                   "the drain's read of a queued job races with its push");
  runner.fail<Gate<kCloseNoWait>>("neg_close_no_wait",
                                  "the drain misses a job a pusher was still queueing");
  runner.fail<Gate<kCheckFirst>>("neg_check_first",
                                 "a pusher that read the old generation queues after the drain");
  return runner.finish();
}
