// Scheduler: start/stop of the workers, attached threads, where the next job comes from, and
// idle parking. The wake of a drained wait list is in wake_list.cpp, the pool's reports in
// pool_reports.cpp.

#include "scheduler.hpp"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

#include "counter_access.hpp"
#include "fiber_switch.hpp"
#include "fiberjob/error.hpp"
#include "stack_guard.hpp"

namespace fiberjob::detail {
namespace {

/// Every kInjectorFirstInterval-th look for work starts at the injector, so a worker that
/// always has local work still picks up yielded fibers and jobs from plain threads.
constexpr std::uint32_t kInjectorFirstInterval = 61;
/// At most this many jobs move from the injector to a worker's deque in one look.
constexpr std::size_t kInjectorBatch = 32;
/// Idle spinning before parking: kSpinRounds looks for work, kPausesPerRound pauses apart
/// (a few tens of microseconds in all, below the cost of a futex wake-up on a VM).
constexpr int kSpinRounds = 64;
constexpr int kPausesPerRound = 32;
/// Every kYieldEveryRounds-th spin round gives the CPU away instead (sched_yield): when more
/// threads are runnable than there are cores (a plain thread submitting jobs to as many
/// workers as cores), a spinning worker must not keep the submitter off its CPU. Measured:
/// 1,000,000 empty jobs from the main thread to 2 workers on 2 cores went from 3-13 M jobs/s
/// (bimodal, thousands of parks) to a steady 13-14 M jobs/s.
constexpr int kYieldEveryRounds = 8;

/// Records the calling thread's stack in `native` (stack_bottom, stack_size), so that work run
/// inline on it is bounded by its headroom (has_stack_headroom). Unknown bounds stay nullptr.
void set_thread_stack_bounds(Fiber& native) noexcept {
  pthread_attr_t attributes;
  if (pthread_getattr_np(pthread_self(), &attributes) != 0) return;
  void* bottom = nullptr;
  std::size_t size = 0;
  if (pthread_attr_getstack(&attributes, &bottom, &size) == 0) {
    native.stack_bottom = bottom;
    native.stack_size = size;
  }
  pthread_attr_destroy(&attributes);
}

std::uint64_t next_random(std::uint64_t& state) noexcept {  // xorshift64
  state ^= state << 13;
  state ^= state >> 7;
  state ^= state << 17;
  return state;
}

}  // namespace

Scheduler::Scheduler(JobSystem& owner, const Config& config)
    : owner_(owner),
      config_(config),
      several_workers_(config.worker_count + config.attachable_threads > 1),
      tracing_(config.tracing),
      trace_origin_ns_(trace_now_ns()),
      context_(ContextAccess::make(*this)),
      fibers_(*this, config.fiber_count, config.max_fiber_count, config.fiber_stack_size,
              &fiber_entry),
      blocking_(*this, config.max_blocking_threads),
      records_(config.worker_count) {
  for (std::size_t i = 0; i < config.stack_classes.size(); ++i) {
    const StackClass& stack_class = config.stack_classes[i];
    class_pools_.push_back(std::make_unique<FiberPool>(
        *this, stack_class.fiber_count, stack_class.max_fiber_count, stack_class.stack_size,
        &fiber_entry, static_cast<std::uint8_t>(i + 1), stack_class.name));
  }
  const std::uint32_t slots = config_.worker_count + config_.attachable_threads;
  workers_.reserve(slots);
  // Every Worker first (each may throw, e.g. for its trace buffer), and only then the fibers:
  // a fiber once acquired is a started Boost.Context fiber, which ~FiberPool must not destroy.
  for (std::uint32_t i = 0; i < slots; ++i) {
    workers_.push_back(std::make_unique<Worker>(
        *this, i, injector_, config_.tracing ? config_.trace_events_per_worker : 0));
    if (i >= config_.worker_count) {  // a slot for an attached thread: no thread, no first fiber
      workers_.back()->is_slot = true;
      workers_.back()->native.pinned = true;
    }
  }
  // Reserve each worker's first fiber now: jobs that suspend early must not starve a worker
  // that has not started yet.
  for (std::uint32_t i = 0; i < config_.worker_count; ++i) {
    workers_[i]->first = fibers_.acquire();
    if (workers_[i]->first == nullptr) throw_pool_exhausted(*this);
  }
  register_scheduler(this);
  try {
    start_workers();
  } catch (...) {
    unregister_scheduler(this);
    throw;
  }
}

bool Scheduler::shut_down() noexcept {
  stop_workers();
  unregister_scheduler(this);
  // The workers have stopped: name what each stuck fiber waits on before they are retired.
  blocking_.stop();  // every call has finished: the workers waited for them
  std::uint32_t suspended = 0;
  for_each_pool([](const FiberPool& pool) {
    pool.for_each_suspended([](const Fiber& fiber) { describe_wait(stderr, fiber); });
  });
  suspended += fibers_.retire_all();
  for (auto& pool : class_pools_) suspended += pool->retire_all();
  if (suspended != 0) {
    std::fprintf(stderr,
                 "fiberjob: JobSystem destroyed with %u fiber(s) still suspended (listed above: "
                 "a counter that never reached zero, or an Event, Mutex, ConditionVariable or "
                 "Semaphore that never let them go); each holds a plain job, and the jobs its "
                 "waits ran inline on its stack. They are never resumed (destructors of their "
                 "locals do not run), and their fiber stacks and the job system's memory stay "
                 "allocated so that a later signal or release of what they wait on is "
                 "harmless.\n",
                 suspended);
  }
  // The workers have stopped, so every coroutine job still alive is suspended on something
  // that never completed (a counter or a foreign awaitable).
  const std::uint64_t coroutines = stats().coroutine_jobs_alive;
  if (coroutines != 0) {
    std::fprintf(stderr,
                 "fiberjob: JobSystem destroyed with %llu coroutine job(s) still suspended on "
                 "something that never completed (a counter, an Event, Mutex, "
                 "ConditionVariable or Semaphore, or a foreign awaitable); their coroutine frames "
                 "and the job system's memory stay allocated (they are never resumed).\n",
                 static_cast<unsigned long long>(coroutines));
  }
  return suspended == 0 && coroutines == 0;
}

namespace {
/// Schedulers kept by keep_forever (Scheduler::next_kept_ links them). Never read: it only
/// keeps their memory reachable.
std::atomic<Scheduler*> g_kept{nullptr};
}  // namespace

void Scheduler::keep_forever(std::unique_ptr<Scheduler> scheduler) noexcept {
  Scheduler* kept = scheduler.release();
  // relaxed: the list is never traversed; it only has to hold the pointers.
  kept->next_kept_ = g_kept.load(std::memory_order_relaxed);
  while (!g_kept.compare_exchange_weak(kept->next_kept_, kept, std::memory_order_relaxed)) {
  }
}

namespace {

/// The CPUs the calling thread may run on (its affinity mask: the process's, under taskset),
/// in increasing order; worker i is pinned to the i-th of them. Errors: Error (InvalidConfig)
/// when there are fewer than `workers`, std::system_error when the mask cannot be read.
std::vector<int> cpus_for_pinning(std::uint32_t workers) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) {
    throw std::system_error(errno, std::generic_category(),
                            "fiberjob: reading the thread's CPU affinity mask for "
                            "Config::pin_workers failed");
  }
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
  }
  if (cpus.size() < workers) {
    throw Error(
        ErrorCode::InvalidConfig,
        "fiberjob: Config::pin_workers with Config::worker_count = " + std::to_string(workers) +
            " needs as many CPUs, but the affinity mask of "
            "the thread creating the JobSystem (e.g. set by taskset) allows only " +
            std::to_string(cpus.size()) +
            "; lower Config::worker_count or turn Config::pin_workers off");
  }
  return cpus;
}

}  // namespace

void Scheduler::start_workers() {
  try {
    std::vector<int> cpus;
    if (config_.pin_workers) cpus = cpus_for_pinning(config_.worker_count);
    for (auto& worker : workers_) {
      Worker* w = worker.get();
      if (w->is_slot) break;  // the slots come last and have no thread
      w->thread = std::thread([this, w] { worker_main(*w); });
      if (config_.pin_workers) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpus[w->index], &set);
        const int error = pthread_setaffinity_np(w->thread.native_handle(), sizeof set, &set);
        if (error != 0) {
          throw std::system_error(error, std::generic_category(),
                                  "fiberjob: pinning worker " + std::to_string(w->index) +
                                      " to CPU " + std::to_string(cpus[w->index]) +
                                      " failed (Config::pin_workers); turn pinning off");
        }
      }
    }
  } catch (...) {
    // Unwind what started. The started workers read workers_ (they steal from every worker)
    // until they are joined, so no Worker may go before stop_workers returns; workers without
    // a thread are skipped by its join. Retire the fibers here: ~FiberPool must not destroy
    // started Boost.Context fibers (that would unwind them). The Worker objects go with
    // workers_ when the constructor's unwinding destroys it.
    stop_workers();
    fibers_.retire_all();
    for (auto& pool : class_pools_) pool->retire_all();
    throw;
  }
}

void Scheduler::stop_workers() noexcept {
  for (auto& worker : workers_) {
    // acquire: pairs with the release store in detach (the slot's last use is over).
    if (worker->is_slot && worker->slot_taken.load(std::memory_order_acquire)) {
      std::fputs(
          "fiberjob: a JobSystem was destroyed while a thread was still attached to it "
          "(AttachedWorker); destroy the AttachedWorker first.\n",
          stderr);
      std::abort();
    }
  }
  if (Worker* self = current_worker(); self != nullptr && self->scheduler == this) {
    std::fputs(
        "fiberjob: a JobSystem was destroyed from one of its own jobs; destroy it from "
        "the thread that created it, after waiting for its work.\n",
        stderr);
    std::abort();
  }
  stopping_.store(true, std::memory_order_seq_cst);
  idle_.notify_all();
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) worker->thread.join();
  }
}

void Scheduler::worker_main(Worker& worker) {
  set_current_worker(&worker);
  install_alternate_signal_stack();
  san_adopt_thread(worker.native.san);
  // Onto the first fiber: it runs the dispatch loop until the scheduler stops, then switches
  // back here, and we release it (finish_switch performs the ReleaseToPool).
  switch_to(&worker.native, worker.first, Handoff::Action::None);
  records_.drain(worker.records);
  set_phase(worker, WorkerPhase::Stopped);
  remove_alternate_signal_stack();
  set_current_worker(nullptr);
}

void Scheduler::push(Job job, Worker* from) noexcept {
  if (from != nullptr && from->scheduler == this) {
    push_local(*from, job);
  } else {
    inject(job, from);
  }
}

void Scheduler::inject(Job job, Worker* from) noexcept {
  injector_.push(job, from != nullptr && from->scheduler == this ? &from->tokens : nullptr);
  idle_.notify(1);
}

void Scheduler::inject_bulk(const std::uintptr_t* jobs, std::size_t count, Priority priority,
                            Worker* from) noexcept {
  injector_.push_bulk(jobs, count, priority,
                      from != nullptr && from->scheduler == this ? &from->tokens : nullptr);
  idle_.notify(static_cast<int>(count));
}

Job Scheduler::steal(Worker& worker, std::size_t priority) noexcept {
  const std::size_t n = workers_.size();
  if (n < 2) return {};
  const std::size_t start = next_random(worker.rng_state) % n;
  for (std::size_t i = 0; i < n; ++i) {
    Worker& victim = *workers_[(start + i) % n];
    if (&victim == &worker) continue;
    WorkStealingDeque& deque = priority == kYieldedQueue ? victim.yielded : victim.deques[priority];
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

Worker* Scheduler::attach() {
  if (current_worker() != nullptr) {
    throw Error(ErrorCode::AttachMisuse,
                "fiberjob: AttachedWorker on a thread that is a worker already (a worker thread, "
                "a job, or an attached thread); attach plain threads only, once");
  }
  for (auto& worker : workers_) {
    bool taken = false;
    // acquire: pairs with the release store in detach, so the previous attached thread's use
    // of the slot (its caches, deque ownership) happens before ours.
    // relaxed: a first look that skips taken slots; the CAS (acquire) pairs with detach.
    if (worker->is_slot && !worker->slot_taken.load(std::memory_order_relaxed) &&
        worker->slot_taken.compare_exchange_strong(taken, true, std::memory_order_acquire,
                                                   std::memory_order_relaxed)) {
      Worker& slot = *worker;
      try {
        install_alternate_signal_stack();
      } catch (...) {
        slot.slot_taken.store(false, std::memory_order_release);  // release: as in detach
        throw;
      }
      san_adopt_thread(slot.native.san);
      set_thread_stack_bounds(slot.native);
      slot.current = &slot.native;
      set_current_worker(&slot);
      return &slot;
    }
  }
  throw Error(ErrorCode::AttachMisuse,
              "fiberjob: AttachedWorker: all " + std::to_string(config_.attachable_threads) +
                  " slot(s) for attached threads are taken; raise Config::attachable_threads");
}

void Scheduler::detach(Worker& slot) noexcept {
  if (current_worker() != &slot || slot.current != &slot.native) {
    std::fputs(
        "fiberjob: an AttachedWorker was destroyed on another thread than the one that created "
        "it, or from inside a job; destroy it on its own thread, outside jobs.\n",
        stderr);
    std::abort();
  }
  flush_deferred_signals(slot);  // none are left after a wait; kept for robustness
  set_current_worker(nullptr);
  remove_alternate_signal_stack();
  // release: pairs with the acquire CAS in attach and load in stop_workers.
  slot.slot_taken.store(false, std::memory_order_release);
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

Job Scheduler::find_job(Worker& worker) noexcept {
  // The quick look of a worker alone in its system (no thief, no victim) that is not due to
  // start at the injector: the usual case of a yield or a wait on one worker. It makes no
  // call on the way to "only the yield queue", so it saves no registers; callgrind: 94
  // instructions per yield for the full look. Same order as the full look.
  if (!several_workers_ && worker.injector_countdown > 1) {
    --worker.injector_countdown;
    if (Job job = take_next(worker)) return job;
    if (Job job = take_chunk(worker)) return job;
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
  }
  return find_job_full(worker);
}

Job Scheduler::find_job_full(Worker& worker) noexcept {
  // An attached thread's own stack, woken: it goes first (its thread is waiting to go on).
  // relaxed: only a hint that skips the exchange; the exchange (acquire) pairs with wake_pinned.
  if (worker.is_slot && worker.native_ready.load(std::memory_order_relaxed) &&
      worker.native_ready.exchange(false, std::memory_order_acquire)) {  // pairs: wake_pinned
    return Job::resume(&worker.native, Priority::High);
  }
  if (--worker.injector_countdown == 0) {
    worker.injector_countdown = kInjectorFirstInterval;
    for (std::size_t p = 0; p < kPriorityCount; ++p) {
      if (Job job = pop_injector(worker, p)) return job;
    }
    if (const std::uintptr_t bits = worker.yielded.steal()) return Job::from_bits(bits);
  }
  if (Job job = take_next(worker)) return job;
  if (Job job = take_chunk(worker)) return job;
  return look_in_queues(worker);
}

Job Scheduler::look_in_queues(Worker& worker) noexcept {
  for (std::size_t p = 0; p < kPriorityCount; ++p) {
    WorkStealingDeque& own = worker.deques[p];
    if (!own.empty_for_owner()) {
      if (const std::uintptr_t bits = own.pop()) return Job::from_bits(bits);
    }
    if (injector_.size_hint(p) != 0) {  // inline: the usual empty injector costs one load
      if (Job job = pop_injector(worker, p)) return job;
    }
    if (several_workers_) {
      if (Job job = steal(worker, p)) return job;
    }
  }
  // Yielded fibers come after every ready job: ours first (oldest first), then other workers'.
  if (!worker.yielded.empty()) {
    if (const std::uintptr_t bits = worker.yielded.steal()) return Job::from_bits(bits);
  }
  return several_workers_ ? steal(worker, kYieldedQueue) : Job{};
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

bool Scheduler::has_visible_work() const noexcept {
  if (!injector_.empty_approx()) return true;
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
  for (;;) {
    if (Job job = find_job(worker)) return job;
    if (Job job = spin_for_job(worker)) return job;
    if (config_.idle_policy == IdlePolicy::Spin) {
      // acquire: pairs with the seq_cst store in stop_workers: work queued before it is
      // visible to has_visible_work.
      if (stopping_.load(std::memory_order_acquire) && !has_visible_work()) return {};
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
    if (has_visible_work()) {
      idle_.cancel_wait();
      continue;
    }
    // seq_cst: with the fence in prepare_wait and the seq_cst store + notify in stop_workers,
    // either we see stopping_ or stop_workers' notify sees our announcement. Work queued before
    // that store is visible once we have seen the flag, so look at the queues once more then:
    // a worker leaves only when it has seen every queue empty after the stop.
    // A job waiting for a blocking call is in no queue: stay (parked) until the pool thread
    // woke it; its wake queues the job and notifies us.
    if (stopping_.load(std::memory_order_seq_cst) && blocking_.pending() == 0) {
      idle_.cancel_wait();
      if (has_visible_work()) continue;
      return {};
    }
    WorkerStats::bump(worker.stats.parks);
    set_phase(worker, WorkerPhase::Parked);
    // Two clock reads per park (tens of ns), against a sleep and a futex wake-up of
    // microseconds: Stats::parked_ns is always kept.
    const std::uint64_t parked_at = trace_now_ns();
    idle_.commit_wait(key);
    const std::uint64_t woke_at = trace_now_ns();
    WorkerStats::bump(worker.stats.parked_ns, woke_at - parked_at);
    if (tracing()) worker.trace.record(TraceKind::Idle, parked_at, woke_at, 0);
    set_phase(worker, WorkerPhase::Searching);
  }
}

Stats Scheduler::stats() const noexcept {
  Stats stats;
  std::int64_t alive = 0;
  for (const auto& worker : workers_) {
    // relaxed: statistics (single-writer counters), pair with nothing.
    stats.jobs_run += worker->stats.jobs_run.load(std::memory_order_relaxed);
    stats.steals += worker->stats.steals.load(std::memory_order_relaxed);
    stats.fiber_switches += worker->stats.switches.load(std::memory_order_relaxed);
    stats.parks += worker->stats.parks.load(std::memory_order_relaxed);
    stats.parked_ns += worker->stats.parked_ns.load(std::memory_order_relaxed);
    stats.pool_exhausted += worker->stats.pool_exhausted.load(std::memory_order_relaxed);
    alive += static_cast<std::int64_t>(
        worker->stats.coroutine_jobs_started.load(std::memory_order_relaxed) -
        worker->stats.coroutine_jobs_ended.load(std::memory_order_relaxed));
  }
  // relaxed: a statistic. The loads are not one instant: a job that starts on one worker and
  // ends on another between them can make the sum briefly negative; clamp it.
  alive += foreign_coroutine_jobs_.load(std::memory_order_relaxed);
  stats.coroutine_jobs_alive = alive > 0 ? static_cast<std::uint64_t>(alive) : 0;
  stats.fibers_created = fibers_.created();
  stats.fibers_in_use = fibers_.in_use();
  stats.fibers_in_use_high_water = fibers_.high_water();
  for (const auto& pool : class_pools_) {  // the stack classes' pools count too
    stats.fibers_created += pool->created();
    stats.fibers_in_use += pool->in_use();
    stats.fibers_in_use_high_water += pool->high_water();
  }
  return stats;
}

}  // namespace fiberjob::detail
