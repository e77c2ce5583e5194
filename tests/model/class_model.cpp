// Relacy model of the hand-over between a stack class's exhausted pool and the jobs that wait
// for one of its fibers (src/class_wait.cpp, src/fiber_pool.cpp), with the exact memory orders
// of the code:
//   FiberPool::acquire -> pop (acquire load, acquire CAS)  -> take_fiber()
//   FiberPool::park_job: keep the job under parked_mutex_, parked_count_ (relaxed), seq_cst
//     fence, may_have_free_fiber (relaxed load) -> unpark_one          -> park()
//   FiberPool::release: push (release CAS), seq_cst fence, parked_count_ (relaxed) != 0
//     -> unpark_one                                                     -> release()
//   FiberPool::unpark_one: take the oldest kept job under parked_mutex_, inject it
// A class of one fiber, held by a running job (thread 0) that ends and releases it, while a
// job of the class (thread 1) finds the pool empty and parks. The two sides are a Dekker pair:
// "kept, then look for a free fiber" against "freed, then look for a kept job". A job kept
// while a fiber is free and nobody queues it is stranded: after() checks that the parked job
// either got the fiber or was queued again. Negative variants drop one fence each; each must
// be reported. docs/model_checking.md.

#include "model_harness.hpp"

namespace {

enum Bug : unsigned {
  kCorrect = 0,
  kParkNoFence = 1u << 0,     // park_job: no fence between keeping the job and the look
  kReleaseNoFence = 1u << 1,  // release: no fence between the push and the look
};

template <unsigned B>
struct ClassPark : rl::test_suite<ClassPark<B>, 2> {
  rl::atomic<unsigned> head;  // the free list: 0 empty, 1 the class's one fiber
  rl::atomic<unsigned> parked_count;
  rl::mutex parked_mutex;
  rl::var<int> parked;       // parked_.size(), under parked_mutex
  rl::atomic<int> injected;  // jobs unpark_one queued
  int ran = 0;               // thread 1's own: its job got the fiber at once

  void before() {
    head.store(0, rl::mo_relaxed, $);  // thread 0's job holds the fiber
    parked_count.store(0, rl::mo_relaxed, $);
    parked($) = 0;
    injected.store(0, rl::mo_relaxed, $);
    ran = 0;
  }
  void after() { RL_ASSERT(ran + injected.load(rl::mo_relaxed, $) == 1); }

  void unpark_one() {
    parked_mutex.lock($);
    if (parked($) == 0) {  // another release or park took it
      parked_mutex.unlock($);
      return;
    }
    parked($) = parked($) - 1;
    parked_count.store(static_cast<unsigned>(parked($)), rl::mo_relaxed, $);
    parked_mutex.unlock($);
    injected.fetch_add(1, rl::mo_relaxed, $);  // Scheduler::inject: a worker retries acquire
  }

  bool take_fiber() {
    unsigned fiber = head.load(rl::mo_acquire, $);
    while (fiber != 0) {
      if (head.compare_exchange_weak(fiber, 0, rl::mo_acquire, $)) return true;
    }
    return false;
  }

  void release() {
    unsigned fiber = head.load(rl::mo_relaxed, $);
    while (!head.compare_exchange_weak(fiber, 1, rl::mo_release, $)) {
    }
    if ((B & kReleaseNoFence) == 0) rl::atomic_thread_fence(rl::mo_seq_cst, $);
    if (parked_count.load(rl::mo_relaxed, $) != 0) unpark_one();
  }

  void park() {
    parked_mutex.lock($);
    parked($) = parked($) + 1;
    parked_count.store(static_cast<unsigned>(parked($)), rl::mo_relaxed, $);
    parked_mutex.unlock($);
    if ((B & kParkNoFence) == 0) rl::atomic_thread_fence(rl::mo_seq_cst, $);
    if (head.load(rl::mo_relaxed, $) != 0) unpark_one();  // may_have_free_fiber
  }

  void thread(unsigned index) {
    if (index == 0) {
      release();
    } else if (take_fiber()) {
      ran = 1;
    } else {
      park();
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  model::Runner runner("class_model", argc, argv);
  runner.pass<ClassPark<kCorrect>>("class_park", {model::kFull, model::kRandom});
  runner.fail<ClassPark<kParkNoFence>>(
      "neg_park_no_fence", "the parked job misses the freed fiber, and the release misses it");
  runner.fail<ClassPark<kReleaseNoFence>>(
      "neg_release_no_fence", "the release misses the parked job, and the job missed the fiber");
  return runner.finish();
}
