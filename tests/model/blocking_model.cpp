// Relacy model of the blocking-call pool's shutdown handshake, with the exact memory orders of
// the code:
//   EventCount::prepare_wait / cancel_wait /      -> prepare_wait() / cancel_wait() /
//     commit_wait / notify (src/event_count.hpp)     commit_wait() / notify()
//   Scheduler::next_job's stop test                -> worker(): leave only when `stopping_` is
//     (src/find_work.cpp)                             set and no blocking call is pending
//   BlockingPool::reserve / link (src/blocking_pool.cpp) -> run_job(): the job's second call
//   BlockingPool::thread_main: run the call, wake_chain (Scheduler::inject: queue + notify(1)),
//     pending_.fetch_sub, blocking_calls_done -> notify_if_stopping -> pool_thread()
//   Scheduler::shut_down: stop_workers (stopping_ + notify_all, join), then BlockingPool::stop
//     (stop and join the pool's threads), then the scheduler's memory goes -> shutdown()
// One worker, one pool thread and the thread that destroys the JobSystem. A plain job is
// suspended in a blocking call when the shutdown begins (pending_ = 1, the call queued); when
// it resumes it makes a second blocking call, and ends after that one. The job must run to its
// end (after(): a worker that left while a call was pending loses the job's wake-up), no
// thread may sleep for ever (Relacy: LIVELOCK), the call's result must reach the job with a
// happens-before edge (else a data race on `result`), and the pool thread must be joined
// before the scheduler's memory goes (else a data race on `alive`).
// The pool's FIFO is under a mutex in the code; `calls` stands for it with release (queue) and
// acquire (take), the order a mutex gives. The injector (moodycamel) is `injected`, likewise.
// Negative variants weaken one step each (`Bug`); each must be reported. docs/model_checking.md.

#include "model_harness.hpp"

namespace {

using u32 = unsigned;

enum Bug : unsigned {
  kCorrect = 0,
  kPendingRelaxed = 1u << 0,  // pending_: the pool's fetch_sub and the worker's load relaxed
  kNoLastNotify = 1u << 1,    // the last call's end does not call notify_if_stopping
  kIgnorePending = 1u << 2,   // next_job leaves on stopping_ alone, not waiting for the calls
  kNoPoolJoin = 1u << 3,      // shut_down frees the scheduler without joining the pool's threads
};

using model::spin;

template <unsigned B>
struct Shutdown : rl::test_suite<Shutdown<B>, 3> {
  // EventCount
  rl::atomic<u32> waiters;
  rl::atomic<u32> epoch;
  // Scheduler and BlockingPool
  rl::atomic<int> stopping;
  rl::atomic<u32> pending;
  rl::atomic<int> calls;     // queued blocking calls (the pool's FIFO)
  rl::atomic<int> injected;  // queued resumptions (the injector)
  rl::atomic<int> pool_stop;
  rl::atomic<int> worker_done;
  rl::atomic<int> pool_done;
  rl::var<int> result;  // the call's output, written by the pool thread, read by the job
  rl::var<int> alive;   // the scheduler's memory: 0 once shut_down returned
  int calls_run = 0;    // the pool thread's own
  int stage = 0;        // the job's own (it runs on the worker only)

  void before() {
    waiters.store(0, rl::mo_relaxed, $);
    epoch.store(0, rl::mo_relaxed, $);
    stopping.store(0, rl::mo_relaxed, $);
    pending.store(1, rl::mo_relaxed, $);  // the job waits in its first call
    calls.store(1, rl::mo_relaxed, $);
    injected.store(0, rl::mo_relaxed, $);
    pool_stop.store(0, rl::mo_relaxed, $);
    worker_done.store(0, rl::mo_relaxed, $);
    pool_done.store(0, rl::mo_relaxed, $);
    result($) = 0;
    alive($) = 1;
    calls_run = 0;
    stage = 0;
  }
  void after() { RL_ASSERT(stage == 2); }  // the job ran to its end

  u32 prepare_wait() {
    waiters.fetch_add(1, rl::mo_seq_cst, $);
    rl::atomic_thread_fence(rl::mo_seq_cst, $);
    return epoch.load(rl::mo_seq_cst, $);
  }
  void cancel_wait() { waiters.fetch_sub(1, rl::mo_seq_cst, $); }
  void commit_wait(u32 key) {
    while (epoch.load(rl::mo_acquire, $) == key) spin();  // the futex sleep
    waiters.fetch_sub(1, rl::mo_seq_cst, $);
  }
  void notify() {
    rl::atomic_thread_fence(rl::mo_seq_cst, $);
    if (waiters.load(rl::mo_relaxed, $) == 0) return;
    epoch.fetch_add(1, rl::mo_seq_cst, $);
  }

  rl::memory_order pending_order() const {
    return (B & kPendingRelaxed) ? rl::mo_relaxed : rl::mo_seq_cst;
  }

  bool take_job() {
    int queued = injected.load(rl::mo_relaxed, $);
    while (queued > 0) {
      if (injected.compare_exchange_weak(queued, queued - 1, rl::mo_acquire, $)) return true;
    }
    return false;
  }

  // The job resumes after its call: reads the result; the first time, makes a second call.
  void run_job() {
    RL_ASSERT(result($) == stage + 1);
    ++stage;
    if (stage == 1) {
      pending.fetch_add(1, rl::mo_seq_cst, $);  // reserve(): counted before it is queued
      calls.fetch_add(1, rl::mo_release, $);    // link(), once the fiber stopped
    }
  }

  void worker() {
    for (;;) {
      if (take_job()) {
        run_job();
        continue;
      }
      const u32 key = prepare_wait();
      if (take_job()) {
        cancel_wait();
        run_job();
        continue;
      }
      const bool calls_done = (B & kIgnorePending) != 0 || pending.load(pending_order(), $) == 0;
      if (stopping.load(rl::mo_seq_cst, $) != 0 && calls_done) {
        cancel_wait();
        if (injected.load(rl::mo_relaxed, $) != 0) continue;  // has_visible_work
        break;
      }
      commit_wait(key);
    }
    worker_done.store(1, rl::mo_release, $);
  }

  void pool_thread() {
    for (;;) {
      int queued = calls.load(rl::mo_relaxed, $);
      if (queued > 0 && calls.compare_exchange_weak(queued, queued - 1, rl::mo_acquire, $)) {
        result($) = ++calls_run;                   // the blocking call
        injected.fetch_add(1, rl::mo_release, $);  // wake_chain -> inject
        notify();                                  // ... idle_.notify(1)
        if (pending.fetch_sub(1, pending_order(), $) == 1 && (B & kNoLastNotify) == 0) {
          RL_ASSERT(alive($) == 1);  // blocking_calls_done touches the scheduler
          if (stopping.load(rl::mo_seq_cst, $) != 0) notify();  // notify_if_stopping
        }
        continue;
      }
      if (pool_stop.load(rl::mo_acquire, $) != 0) break;
      spin();  // ready_.wait
    }
    pool_done.store(1, rl::mo_release, $);
  }

  void shutdown() {
    stopping.store(1, rl::mo_seq_cst, $);  // stop_workers
    notify();
    while (worker_done.load(rl::mo_acquire, $) == 0) spin();  // join the workers
    pool_stop.store(1, rl::mo_release, $);                    // BlockingPool::stop
    if ((B & kNoPoolJoin) == 0) {
      while (pool_done.load(rl::mo_acquire, $) == 0) spin();  // join the pool's threads
    }
    alive($) = 0;  // ~Scheduler
  }

  void thread(unsigned index) {
    if (index == 0) {
      worker();
    } else if (index == 1) {
      pool_thread();
    } else {
      shutdown();
    }
  }
};

}  // namespace

int main(int argc, char** argv) {
  model::Runner runner("blocking_model", argc, argv);
  // Context bound 1: every schedule with one preemption (the spin loops' yields are free); the
  // bound of 2 explores 14 million schedules in about 10 minutes, too long for the suite.
  const model::Search bound1{rl::sched_bound, 0, 1};
  runner.pass<Shutdown<kCorrect>>("blocking_shutdown", {bound1, model::kRandom});
  runner.fail<Shutdown<kPendingRelaxed>>(
      "neg_pending_relaxed",
      "the worker reads pending 0 without seeing the wake the last call queued, and leaves");
  runner.fail<Shutdown<kNoLastNotify>>(
      "neg_no_last_notify", "the worker parked for the last call is never woken when it ends");
  runner.fail<Shutdown<kIgnorePending>>(
      "neg_ignore_pending", "the worker leaves while a call is pending: its job's wake is lost");
  runner.fail<Shutdown<kNoPoolJoin>>(
      "neg_no_pool_join", "the scheduler is freed while the pool thread still touches it");
  return runner.finish();
}
