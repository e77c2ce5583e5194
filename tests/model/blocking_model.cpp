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
// Second model (QueuedStop, below): a stop racing the pool thread for a queued call.

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

// The stop of a job whose blocking call is queued (BlockingPool::link, unlink_queued,
// wake_unqueued, thread_main; StopWake::commit and on_stop in src/stop_wake.cpp):
//   waiter():  the linker, after the job stopped running: under the pool's mutex commits the
//              stop side (CAS kIdle -> kLinked, acq_rel / acquire) and queues the call, or, when
//              the stop came first, queues nothing and goes on; then waits for its wake,
//              disarms (waits for a running stop callback: the std::stop_callback destructor),
//              and unwinds (`frame` dies), reading the result only when the stop did not take
//              the call.
//   pool():    takes the call from the FIFO under the mutex, runs it (reads `frame`, writes
//              `result`), wakes the waiter.
//   stopper(): request_stop: exchange kStopped (acq_rel); when it found kLinked, takes the call
//              off the FIFO under the mutex if still there, and then owns the wake (`cancelled`,
//              then the wake).
// Checked: exactly one wake; the call never runs after a stop took it or after the waiter
// unwound (a data race on `frame`); a stop before the link queues nothing (fn never runs).
// Context bound 4 (the full search does not end in minutes: the pool thread's polling loop)
// and random.
enum QueuedBug : unsigned {
  kQueuedCorrect = 0,
  kUnlinkAlways = 1u << 0,  // the stop claims the call without looking whether it is queued
  kUnlinkNoLock = 1u << 1,  // the stop takes the call off the FIFO without the pool's mutex
  kNoCommit = 1u << 2,      // the linker queues without committing the stop side
};

template <unsigned B>
struct QueuedStop : rl::test_suite<QueuedStop<B>, 3> {
  static constexpr u32 kIdle = 0;
  static constexpr u32 kLinked = 1;
  static constexpr u32 kStopped = 2;
  rl::mutex mutex;            // BlockingPool::mutex_
  rl::var<int> queued;        // the call is in the FIFO (under mutex)
  rl::atomic<u32> state;      // StopWake::state
  rl::atomic<int> woken;      // wakes the waiter got (release by the waker, acquire by it)
  rl::atomic<int> linked;     // the linker has run (the pool thread may stop looking)
  rl::atomic<int> stop_done;  // the stop callback returned (its stop_callback may go)
  rl::var<int> frame;         // the job's frame: fn reads it; dead once the waiter unwound
  rl::var<int> result;        // written by fn, read by the waiter when not cancelled
  rl::var<int> cancelled;     // StopWake::cancelled: written by the owner of the wake
  int fn_runs = 0;            // the pool thread's own
  bool stop_first = false;    // the stopper's own: its exchange found kIdle

  void before() {
    queued($) = 0;
    state.store(kIdle, rl::mo_relaxed, $);
    woken.store(0, rl::mo_relaxed, $);
    linked.store(0, rl::mo_relaxed, $);
    stop_done.store(0, rl::mo_relaxed, $);
    frame($) = 1;
    result($) = 0;
    cancelled($) = 0;
    fn_runs = 0;
    stop_first = false;
  }
  void after() {
    RL_ASSERT(woken.load(rl::mo_relaxed, $) == 1);  // exactly one wake
    if (stop_first) RL_ASSERT(fn_runs == 0);        // stopped before the link: never runs
  }

  void wake() { woken.fetch_add(1, rl::mo_release, $); }

  void waiter() {
    bool go_on = false;
    mutex.lock($);
    u32 expected = kIdle;
    if ((B & kNoCommit) != 0 ||
        state.compare_exchange_strong(expected, kLinked, rl::mo_acq_rel, $, rl::mo_acquire, $)) {
      queued($) = 1;
    } else {
      cancelled($) = 1;
      go_on = true;  // linked nothing: the waiter goes on at once
    }
    mutex.unlock($);
    linked.store(1, rl::mo_release, $);
    if (go_on) wake();
    while (woken.load(rl::mo_acquire, $) == 0) spin();
    while (stop_done.load(rl::mo_acquire, $) == 0) spin();  // disarm: the callback returned
    if (cancelled($) == 0) RL_ASSERT(result($) == 7);
    frame($) = 0;  // unwinds: what fn may use is gone
  }

  void pool() {
    for (;;) {
      mutex.lock($);
      const bool took = queued($) == 1;
      if (took) queued($) = 0;
      mutex.unlock($);
      if (took) {
        ++fn_runs;
        RL_ASSERT(frame($) == 1);  // the job's frame is alive while fn runs
        result($) = 7;
        wake();
        return;
      }
      if (linked.load(rl::mo_acquire, $) != 0) {
        mutex.lock($);
        const bool empty = queued($) == 0;
        mutex.unlock($);
        if (empty) return;  // the stop took it, or nothing was queued
        continue;
      }
      spin();
    }
  }

  void stopper() {
    const u32 previous = state.exchange(kStopped, rl::mo_acq_rel, $);
    stop_first = previous == kIdle;
    if (previous == kLinked) {
      bool owned = true;
      if ((B & kUnlinkAlways) == 0) {
        if ((B & kUnlinkNoLock) == 0) mutex.lock($);
        owned = queued($) == 1;
        if (owned) queued($) = 0;
        if ((B & kUnlinkNoLock) == 0) mutex.unlock($);
      }
      if (owned) {
        cancelled($) = 1;
        wake();
      }
    }
    stop_done.store(1, rl::mo_release, $);
  }

  void thread(unsigned index) {
    if (index == 0) {
      waiter();
    } else if (index == 1) {
      pool();
    } else {
      stopper();
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
  runner.pass<QueuedStop<kQueuedCorrect>>("queued_stop", {model::kBound4, model::kRandom});
  runner.fail<QueuedStop<kUnlinkAlways>>(
      "neg_unlink_always", "the stop and the pool thread both wake the job; fn outlives it");
  runner.fail<QueuedStop<kUnlinkNoLock>>("neg_unlink_no_lock",
                                         "the FIFO is read and written by two threads at once");
  runner.fail<QueuedStop<kNoCommit>>("neg_no_commit",
                                     "a stop before the link: fn still runs (and a lost wake)");
  return runner.finish();
}
