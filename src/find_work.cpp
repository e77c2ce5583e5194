// The search for work: where a worker looks for its next job and in which order, stealing,
// the injector's batches, and the idle spin and parking when there is none.

#include <sched.h>

#include <cstddef>
#include <cstdint>

#include "platform/futex.hpp"
#include "scheduler.hpp"

namespace fiberjob::detail {
namespace {

/// Every kInjectorFirstInterval-th look for work starts at the injector, so a worker that
/// always has local work still picks up yielded fibers and jobs from plain threads.
constexpr std::uint32_t kInjectorFirstInterval = 61;
/// At most this many jobs move from the injector to a worker's deque in one look.
constexpr std::size_t kInjectorBatch = 32;
/// Idle spinning before parking: kSpinRounds looks for work, kPausesPerRound pauses apart. The
/// whole spin is kept shorter than a futex sleep and wake-up, so work that arrives during it is
/// picked up sooner than a parked worker could be woken for it (docs/decisions.md).
constexpr int kSpinRounds = 64;
constexpr int kPausesPerRound = 32;
/// Every kYieldEveryRounds-th spin round gives the CPU away instead (sched_yield): when more
/// threads are runnable than there are cores (a plain thread submitting jobs to as many
/// workers as cores), a spinning worker must not keep the submitter off its CPU, or the
/// submitter stalls and the workers park and wake in turn (docs/decisions.md).
constexpr int kYieldEveryRounds = 8;

std::uint64_t next_random(std::uint64_t& state) noexcept {  // xorshift64
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

}  // namespace

template <typename PickDeque>
Job Scheduler::steal(Worker& worker, PickDeque pick) noexcept {
  const std::size_t n = workers_.size();
  if (n < 2) return {};
  const std::size_t start = next_random(worker.rng_state) % n;
  for (std::size_t i = 0; i < n; ++i) {
    Worker& victim = *workers_[(start + i) % n];
    if (&victim == &worker) continue;
    WorkStealingDeque& deque = pick(victim);
    // Two tries: a steal fails either because the deque is empty or because it lost a race.
    for (int attempt = 0; attempt < 2 && !deque.empty(); ++attempt) {
      if (const std::uintptr_t bits = deque.steal()) {
        WorkerStats::bump(worker.stats.steals);
        if (tracing()) {
          const std::uint64_t now = trace_now_ns();
          worker.trace.record(TraceKind::Steal, now, now, victim.index);
        }
        return Job::from_bits(bits);
      }
    }
  }
  return {};
}

Job Scheduler::steal_ready(Worker& worker, std::size_t priority) noexcept {
  return steal(
      worker, [priority](Worker& victim) -> WorkStealingDeque& { return victim.deques[priority]; });
}

Job Scheduler::steal_yielded(Worker& worker) noexcept {
  return steal(worker, [](Worker& victim) -> WorkStealingDeque& { return victim.yielded; });
}

Job Scheduler::pop_injector(Worker& worker, std::size_t priority) noexcept {
  // Take a share of what is queued (at most kInjectorBatch): one dequeue instead of one per
  // job, and the rest goes onto our deque, where the other workers can steal it.
  const std::size_t queued = injector_.size_hint(priority);
  if (queued == 0) return {};            // the common case: one load
  std::uintptr_t batch[kInjectorBatch];  // uninitialised: filled by pop_bulk
  const std::size_t share = queued / workers_.size();
  const std::size_t want = share < 1 ? 1 : share < kInjectorBatch ? share : kInjectorBatch;
  const std::size_t got = injector_.pop_bulk(priority, worker.tokens, batch, want);
  if (got == 0) return {};
  // Reverse order, so that our own pops run them oldest first.
  for (std::size_t i = got - 1; i >= 1; --i) push_local(worker, Job::from_bits(batch[i]));
  if (got > 1) notify_from_worker(static_cast<int>(got - 1));
  return Job::from_bits(batch[0]);
}

inline Job Scheduler::take_chunk(Worker& worker) noexcept {
  // relaxed: only a hint to skip the exchange; the exchange (acquire) pairs with the release
  // stores of the slot in run_chain.
  if (worker.chunk.load(std::memory_order_relaxed) != 0) {
    return Job::from_bits(worker.chunk.exchange(0, std::memory_order_acquire));
  }
  return {};
}

inline Job Scheduler::take_next(Worker& worker) noexcept {
  // relaxed: only a hint to skip the exchange; the exchange (acquire) pairs with push_next.
  if (const std::uintptr_t hint = worker.next.load(std::memory_order_relaxed); hint != 0) {
    // The woken fiber goes first, unless a High job is ready and it is not High itself.
    const bool high_waits = !worker.deques[0].empty_for_owner() || injector_.size_hint(0) != 0;
    if (!high_waits || Job::from_bits(hint).priority() == Priority::High) {
      if (const std::uintptr_t bits = worker.next.exchange(0, std::memory_order_acquire)) {
        return Job::from_bits(bits);
      }
    }
  }
  return {};
}

// Where a worker looks for its next job, highest first. Both looks of find_job go through
// look_in_order, so this is the one place that states the order:
//   1. the fiber one of its jobs just woke (Worker::next), unless a High job waits (take_next);
//   2. the rest of a chain chunk it was making runnable (Worker::chunk);
//   3. a worker thread (not an attached thread): a coroutine's resume_on_any hop;
//   4. the ready jobs, High to Low priority: own deque, injector, the other workers' deques;
//   5. the yielded fibers: its own, oldest first, then the other workers' (look_in_queues).
// Every kInjectorFirstInterval-th look starts at the injector and the own yield queue instead
// (find_job_full), so work that keeps coming cannot starve them.
//
// kAlone: the worker is alone in its system (no thief, no victim, no attached-thread slot, so
// no hop in step 3). Step 4 is then skipped with one branch when every queue is empty, and step 5
// takes from the yield queue without a CAS. Always inline: the quick look makes no call on the way
// to the yield queue, so it saves no registers (a yield on one worker is this path).
template <bool kAlone>
[[gnu::always_inline]] inline Job Scheduler::look_in_order(Worker& worker) noexcept {
  if (Job job = take_next(worker)) return job;
  if (Job job = take_chunk(worker)) return job;
  if constexpr (kAlone) {
    static_assert(kPriorityCount == 3, "the quick look checks each priority level");
    // Bitwise, not short-circuit: the six loads go out together and there is one branch.
    auto occupied = [](const WorkStealingDeque& deque) {
      return static_cast<unsigned>(!deque.empty_for_owner());
    };
    const std::size_t hints =
        injector_.size_hint(0) | injector_.size_hint(1) | injector_.size_hint(2);
    const unsigned queued = occupied(worker.deques[0]) | occupied(worker.deques[1]) |
                            occupied(worker.deques[2]) | static_cast<unsigned>(hints != 0);
    if (queued != 0) return look_in_queues(worker);
    // Alone in the system: nobody else takes from our yield queue, so no CAS.
    if (!worker.yielded.empty()) return Job::from_bits(worker.yielded.take_oldest_unshared());
    return {};
  } else {
    return look_in_queues(worker);
  }
}

Job Scheduler::find_job(Worker& worker) noexcept {
  // The quick look: a worker alone in its system that is not due to start at the injector and
  // has no timer to fire (one relaxed load), the usual case of a yield or a wait on one worker.
  // Anything else takes the full look, which fires the due timers first.
  if (!several_workers_ && worker.injector_countdown > 1 && !timers_.armed()) {
    --worker.injector_countdown;
    return look_in_order<true>(worker);
  }
  return find_job_full(worker);
}

Job Scheduler::find_job_full(Worker& worker) noexcept {
  if (timers_.armed()) [[unlikely]]
    expire_due_timers(worker);  // one relaxed load otherwise
  // An attached thread's own stack, woken: it goes first (its thread is waiting to go on).
  // relaxed: only a hint that skips the exchange; the exchange (acquire) pairs with wake_pinned.
  if (worker.is_slot && worker.native_ready.load(std::memory_order_relaxed) &&
      worker.native_ready.exchange(false, std::memory_order_acquire)) {  // pairs: wake_pinned
    return Job::resume(&worker.native, Priority::High);
  }
  if (worker.inbox != nullptr) {  // an attached thread's affine jobs: nobody else may run them
    if (Job job = take_woken_affine(worker)) return job;
    if (Job job = take_own(worker)) return job;
    if (Job job = take_fresh_affine(worker)) return job;
  }
  if (--worker.injector_countdown == 0) {
    worker.injector_countdown = kInjectorFirstInterval;
    for (std::size_t p = 0; p < kPriorityCount; ++p) {
      if (Job job = pop_injector(worker, p)) return job;
    }
    if (const std::uintptr_t bits = worker.yielded.steal()) return Job::from_bits(bits);
  }
  return look_in_order<false>(worker);
}

Job Scheduler::take_own(Worker& worker) noexcept {
  if (Job job = take_next(worker)) return job;
  if (Job job = take_chunk(worker)) return job;
  for (WorkStealingDeque& own : worker.deques) {
    if (!own.empty_for_owner()) {
      if (const std::uintptr_t bits = own.pop()) return Job::from_bits(bits);
    }
  }
  return {};
}

Job Scheduler::take_worker_hop(const Worker& worker) noexcept {
  if (worker.is_slot || !worker_hops_.maybe_holds()) return {};  // one load when none
  return Job::from_bits(worker_hops_.take());
}

Job Scheduler::look_in_queues(Worker& worker) noexcept {
  // A coroutine that asked to leave an attached thread: before new jobs, as a woken fiber.
  // The usual empty hop queue costs one load here, no call.
  if (worker_hops_.maybe_holds()) [[unlikely]] {
    if (Job job = take_worker_hop(worker)) return job;
  }
  // One priority level: own deque, injector, the other workers' deques.
  auto look_at = [&](std::size_t p) -> Job {
    WorkStealingDeque& own = worker.deques[p];
    if (!own.empty_for_owner()) {
      if (const std::uintptr_t bits = own.pop()) return Job::from_bits(bits);
    }
    if (injector_.size_hint(p) != 0) {  // inline: the usual empty injector costs one load
      if (Job job = pop_injector(worker, p)) return job;
    }
    if (several_workers_) {
      if (Job job = steal_ready(worker, p)) return job;
    }
    return {};
  };
  // Unrolled (no loop counter): the levels above the job's are usually empty.
  static_assert(kPriorityCount == 3, "one look per priority level");
  if (Job job = look_at(0)) return job;
  if (Job job = look_at(1)) return job;
  if (Job job = look_at(2)) return job;
  // Yielded fibers come after every ready job: ours first (oldest first), then other workers'.
  if (!worker.yielded.empty()) {
    if (const std::uintptr_t bits = worker.yielded.steal()) return Job::from_bits(bits);
  }
  return several_workers_ ? steal_yielded(worker) : Job{};
}

Job Scheduler::spin_for_job(Worker& worker) noexcept {
  for (int round = 0; round < kSpinRounds; ++round) {
    if (round % kYieldEveryRounds == kYieldEveryRounds - 1) {
      sched_yield();
    } else {
      for (int i = 0; i < kPausesPerRound; ++i) cpu_relax();
    }
    if (Job job = find_job(worker)) return job;
    // relaxed: a hint to stop spinning early; next_job re-checks with the proper order.
    if (stopping_.load(std::memory_order_relaxed)) break;
  }
  return steal_next(worker);  // a whole spin phase without work: the owners are busy
}

Job Scheduler::steal_next(Worker& worker) noexcept {
  for (auto& victim : workers_) {
    if (victim.get() == &worker) continue;
    // relaxed: a first look; the CAS (acquire) pairs with the release store in push_next.
    std::uintptr_t bits = victim->next.load(std::memory_order_relaxed);
    if (bits != 0 && victim->next.compare_exchange_strong(bits, 0, std::memory_order_acquire,
                                                          std::memory_order_relaxed)) {
      WorkerStats::bump(worker.stats.steals);
      return Job::from_bits(bits);
    }
    // relaxed: a first look; the CAS (acquire) pairs with the release stores in run_chain.
    bits = victim->chunk.load(std::memory_order_relaxed);
    if (bits != 0 && victim->chunk.compare_exchange_strong(bits, 0, std::memory_order_acquire,
                                                           std::memory_order_relaxed)) {
      WorkerStats::bump(worker.stats.steals);
      return Job::from_bits(bits);
    }
  }
  return {};
}

void blocking_calls_done(Scheduler& scheduler) noexcept { scheduler.notify_if_stopping(); }

void Scheduler::notify_if_stopping() noexcept {
  // seq_cst: pairs with the store in stop_workers (a worker parked for the blocking calls
  // has seen it; otherwise it will see pending() == 0 before it parks).
  if (stopping_.load(std::memory_order_seq_cst)) idle_.notify_all();
}

bool Scheduler::has_visible_work(const Worker& looking) const noexcept {
  if (!injector_.empty_approx()) return true;
  if (!looking.is_slot && worker_hops_.maybe_holds()) return true;
  for (const auto& worker : workers_) {
    for (const WorkStealingDeque& deque : worker->deques) {
      if (!deque.empty()) return true;
    }
    if (!worker->yielded.empty()) return true;
    // relaxed: as for the deques' sizes; the parking protocol's fences order it.
    if (worker->next.load(std::memory_order_relaxed) != 0) return true;
    if (worker->chunk.load(std::memory_order_relaxed) != 0) return true;  // relaxed: as above
  }
  return false;
}

Job Scheduler::next_job(Worker& worker) noexcept {
  set_phase(worker, WorkerPhase::Searching);
  std::uint64_t idle_since = 0;  // the first park of this search (the hang watchdog)
  for (;;) {
    if (Job job = find_job(worker)) return job;
    if (Job job = spin_for_job(worker)) return job;
    if (config_.idle_policy == IdlePolicy::Spin) {
      // acquire: pairs with the seq_cst store in stop_workers: work queued before it is
      // visible to has_visible_work.
      if (stopping_.load(std::memory_order_acquire) && !has_visible_work(worker) &&
          !timers_.armed()) {
        return {};
      }
      sched_yield();
      continue;
    }
    const EventCount::Key key = idle_.prepare_wait();
    if (Job job = find_job(worker)) {
      idle_.cancel_wait();
      return job;
    }
    // A look can miss work that is there: a steal that lost a race, or moodycamel's dequeue,
    // which may fail transiently while another consumer's failed attempt is half done. Sleep
    // (or stop) only when every queue is seen empty; otherwise look again.
    if (has_visible_work(worker)) {
      idle_.cancel_wait();
      continue;
    }
    // seq_cst: with the fence in prepare_wait and the seq_cst store + notify in stop_workers,
    // either we see stopping_ or stop_workers' notify sees our announcement. Work queued before
    // that store is visible once we have seen the flag, so look at the queues once more then:
    // a worker leaves only when it has seen every queue empty after the stop.
    // A job waiting for a blocking call is in no queue: stay (parked) until the pool thread
    // woke it; its wake queues the job and notifies us (notify_if_stopping for the last one).
    // Sleepers and timed waits are in no queue either: stay until their timers have fired.
    if (stopping_.load(std::memory_order_seq_cst) && blocking_.pending() == 0 && !timers_.armed()) {
      idle_.cancel_wait();
      if (has_visible_work(worker)) continue;
      return {};
    }
    WorkerStats::bump(worker.stats.parks);
    set_phase(worker, WorkerPhase::Parked);
    // Two clock reads per park cost little next to the sleep and futex wake-up they bracket,
    // so Stats::parked_ns is kept even when tracing is off.
    const std::uint64_t parked_at = trace_now_ns();
    if (idle_since == 0) idle_since = parked_at;
    // Read after prepare_wait's fence: an earlier timer armed after this read notifies us
    // (notify_timer_armed), so the park never outlasts the earliest deadline.
    idle_.commit_wait(key, park_deadline(idle_since));
    const std::uint64_t woke_at = trace_now_ns();
    watch_for_hang(worker, idle_since, woke_at);
    WorkerStats::bump(worker.stats.parked_ns, woke_at - parked_at);
    if (tracing()) worker.trace.record(TraceKind::Idle, parked_at, woke_at, 0);
    set_phase(worker, WorkerPhase::Searching);
  }
}

}  // namespace fiberjob::detail
