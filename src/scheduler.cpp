// Scheduler lifecycle: construction, start and stop of the worker threads, a worker thread's
// main, where a pushed job goes, and the statistics. Attached threads are in attach.cpp, the
// search for work and idle parking in find_work.cpp, the wake of a drained wait list in
// wake_list.cpp, the pool's reports in pool_reports.cpp.

#include "scheduler.hpp"
#include "fiberjob/detail/die.hpp"
#include "platform/fence.hpp"

#include <pthread.h>
#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>

#include "fiber_switch.hpp"
#include "fiberjob/error.hpp"
#include "stack_guard.hpp"

namespace fiberjob::detail {

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
    workers_.back()->trace.set_ring(config_.trace_ring_frames != 0);
    workers_.back()->untraced_scheduler = tracing() ? nullptr : this;
    if (i >= config_.worker_count) {  // a slot for an attached thread: no thread, no first fiber
      workers_.back()->is_slot = true;
      workers_.back()->native.pinned = true;
      workers_.back()->inbox = std::make_unique<AffineInbox>();
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

namespace {
void report_late_stop() noexcept {
  std::fputs(
      "fiberjob: request_stop() came too late for the JobSystem's destructor (it raced the "
      "destructor, or came after it returned): a stop woke a suspended job after the workers "
      "had stopped, so the job is never resumed (it stays suspended, and its counter never "
      "reaches zero). Request the stops (and wait for the stopped jobs' counters, if need be) "
      "before destroying the JobSystem.\n",
      stderr);
}
}  // namespace

void Scheduler::check_stop_after_shutdown() noexcept {
  // seq_cst fence, then seq_cst load of workers_gone_: pairs with shut_down's store of it and
  // its fence before it looks at the injector (Dekker; see the declaration).
  seq_cst_fence();
  // relaxed exchange: elects one report, pairs with nothing.
  if (workers_gone_.load() && !late_stop_reported_.exchange(true, std::memory_order_relaxed)) {
    report_late_stop();
  }
}

bool Scheduler::shut_down() noexcept {
  stop_workers();
  // A worker of another job system may still be inside wake_pinned for one of our attached
  // threads (it woke the thread, which went on to destroy us): let it finish with our memory.
  for (const auto& worker : workers_) {
    int spins = 0;
    // acquire: pairs with the release decrement at the end of wake_pinned.
    while (worker->pinned_wakers.load(std::memory_order_acquire) != 0) spin_then_yield(spins++);
  }
  // seq_cst store, then seq_cst fence before the look at the injector: pairs with the fence
  // and load of workers_gone_ in check_stop_after_shutdown (Dekker; see the declaration).
  workers_gone_.store(true);
  seq_cst_fence();
  // The workers left with every queue empty: a resumption queued since came too late (a stop,
  // from another thread, racing this destructor).
  if (!injector_.empty_approx() && !late_stop_reported_.exchange(true, std::memory_order_relaxed)) {
    report_late_stop();  // relaxed exchange: as above
  }
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
/// keeps their memory reachable. Relaxed load and CAS: they publish nothing, pair with nothing.
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
      die_with(
          "fiberjob: a JobSystem was destroyed while a thread was still attached to it "
          "(AttachedWorker); destroy the AttachedWorker first (its destructor runs the "
          "thread-affine jobs still queued for it).");
    }
  }
  if (current_worker_of(*this) != nullptr) {
    die_with(
        "fiberjob: a JobSystem was destroyed from one of its own jobs; destroy it from "
        "the thread that created it, after waiting for its work.");
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
  if (is_worker_of(from, *this)) {
    push_local(*from, job);
  } else {
    inject(job, from);
  }
}

void Scheduler::inject(Job job, Worker* from) noexcept {
  injector_.push(job, is_worker_of(from, *this) ? &from->tokens : nullptr);
  idle_.notify(1);
}

void Scheduler::push_to_worker_threads(Job job, Worker* from) noexcept {
  if (config_.attachable_threads == 0) {  // no attached thread could take it back
    inject(job, from);
    return;
  }
  if (!worker_hops_.push(job.bits())) {
    die_with(
        "fiberjob: out of memory queueing a resume_on_any hop, so the coroutine would be "
        "lost; free memory");
  }
  idle_.notify_all();
}

void Scheduler::inject_bulk(const std::uintptr_t* jobs, std::size_t count, Priority priority,
                            Worker* from) noexcept {
  injector_.push_bulk(jobs, count, priority, is_worker_of(from, *this) ? &from->tokens : nullptr);
  idle_.notify(static_cast<int>(count));
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
