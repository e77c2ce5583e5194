#pragma once
// Scheduler: the JobSystem's internals — workers, injectors, idle parking, fiber and record
// pools, and where a job comes from next.

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "blocking_pool.hpp"
#include "context_access.hpp"
#include "event_count.hpp"
#include "fiber_pool.hpp"
#include "fiberjob/config.hpp"
#include "fiberjob/detail/cache_line.hpp"
#include "fiberjob/stats.hpp"
#include "job.hpp"
#include "record_pool.hpp"
#include "timer_queue.hpp"
#include "worker.hpp"

namespace fiberjob {
class JobSystem;
}

namespace fiberjob::detail {

class Scheduler;
/// Makes an attached thread's suspended own stack (`fiber`, pinned) runnable on that thread.
void wake_pinned(Fiber* fiber) noexcept;

/// The live schedulers, for write_diagnostics (diagnostics.cpp).
void register_scheduler(const Scheduler* scheduler);
void unregister_scheduler(const Scheduler* scheduler) noexcept;
/// True while `scheduler` is registered (constructed and not yet shut down).
bool scheduler_registered(const Scheduler* scheduler) noexcept;
/// Writes one line naming what a suspended fiber waits on (a counter, an Event, a Mutex, ...,
/// or nothing: a yield or hop), by address only (diagnostics.cpp). Any thread.
void describe_wait(std::FILE* out, const Fiber& fiber) noexcept;

class Scheduler {
 public:
  /// `config` must be validated. Starts the workers.
  Scheduler(JobSystem& owner, const Config& config);
  /// Frees everything; call only after shut_down returned true (or when construction failed).
  ~Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  /// Finishes all work that can finish, stops the workers, retires the idle fibers. Returns
  /// true when the scheduler may be destroyed; false when jobs are still suspended on counters
  /// that never reached zero (reported on stderr): their wait nodes stay linked into those
  /// counters, so the scheduler must then be kept (keep_forever) for a later signal to be safe.
  [[nodiscard]] bool shut_down() noexcept;
  /// Keeps a shut-down `scheduler` whose jobs are still suspended forever: never destroyed, so
  /// its fiber records, stacks and queues stay valid. A later signal of a counter such a job
  /// waits on queues the job's resumption into the stopped injector, where it is never run.
  /// The memory stays reachable from a global list, so leak checkers do not report it.
  static void keep_forever(std::unique_ptr<Scheduler> scheduler) noexcept;

  [[nodiscard]] JobSystem& owner() const noexcept { return owner_; }
  [[nodiscard]] const Config& config() const noexcept { return config_; }
  /// Worker threads (Config::worker_count); the attached-thread slots come after them.
  [[nodiscard]] std::size_t worker_count() const noexcept { return config_.worker_count; }
  FiberPool& fibers() noexcept { return fibers_; }
  [[nodiscard]] const FiberPool& fibers() const noexcept { return fibers_; }
  /// At shutdown, wakes the workers parked until the last blocking call ended. Any thread.
  void notify_if_stopping() noexcept;
  /// Called by a stop callback right after it queued the resumption of a job of this system:
  /// when the destructor has already joined the workers (nobody will run it), reports the
  /// misuse on stderr, once per system. Any thread. seq_cst fence, then a seq_cst load of
  /// workers_gone_: a Dekker pair with shut_down's store and its look at the injector, so one
  /// of the two sides sees the late resumption.
  void check_stop_after_shutdown() noexcept;
  /// The blocking-call thread pool.
  BlockingPool& blocking() noexcept { return blocking_; }
  /// The pool of stack class `stack_class` (0 = fibers(); i + 1 = Config::stack_classes[i]).
  FiberPool& pool(std::uint8_t stack_class) noexcept {
    return stack_class == 0 ? fibers_ : *class_pools_[stack_class - 1u];
  }
  /// Calls `fn(pool)` for the default pool and every stack class's pool.
  template <class Fn>
  void for_each_pool(Fn&& fn) const {
    fn(fibers_);
    for (const auto& pool : class_pools_) fn(*pool);
  }
  /// The one Context all jobs of this system receive.
  Context& context() noexcept { return context_; }
  RecordPool& records() noexcept { return records_; }

  /// Queues `job` where the caller is: `from`'s own deque when `from` is one of our workers
  /// (no wake-up: call notify), else the injector (wakes a worker).
  void push(Job job, Worker* from) noexcept;
  /// Queues `job` in the injector at its priority (FIFO per producer).
  void inject(Job job, Worker* from) noexcept;
  /// Queues `count` jobs of one priority (their Job::bits(); a plain array, so that callers'
  /// batch buffers need no zeroing) in the injector with one bulk enqueue, then wakes up to
  /// `count` workers.
  void inject_bulk(const std::uintptr_t* jobs, std::size_t count, Priority priority,
                   Worker* from) noexcept;
  /// Queues `job` (a resume_on_any hop) where only the worker threads take it, never an
  /// attached thread: one inside a wait would otherwise take its own hop back. Wakes every
  /// parked worker (a single notify could wake a parked attached thread, which leaves the job
  /// alone). In a system without attached-thread slots it is `inject`. Any thread.
  void push_to_worker_threads(Job job, Worker* from) noexcept;
  /// Wakes up to `count` parked workers, called by one of this system's workers after it
  /// published work. With a single worker there is nobody to wake (the caller is the worker),
  /// so not even the fence is paid.
  /// True when the system has more than one worker (attached slots included): someone may
  /// steal.
  [[nodiscard]] bool several_workers() const noexcept { return several_workers_; }
  void notify_from_worker(int count) noexcept {
    if (several_workers_) idle_.notify(count);
  }

  /// Binds the calling thread to a free slot (AttachedWorker). Errors: Error (AttachMisuse).
  Worker* attach();
  /// Unbinds the calling thread from `slot`; aborts with a message on misuse.
  void detach(Worker& slot) noexcept;
  /// Wakes every parked worker (and parked attached thread).
  void notify_all_idle() noexcept { idle_.notify_all(); }

  /// The timer service of this system (sleeps, timed waits).
  TimerQueue& timers() noexcept { return timers_; }
  /// Called after a TimerQueue::insert that returned true (a new earliest deadline), once the
  /// caller left any primitive's lock: wakes a parked worker, whose park then honours the new
  /// deadline. Any thread; never suspends.
  void notify_timer_armed() noexcept { idle_.notify(1); }

  /// One non-blocking look for work: own deque, injector, steal — High to Low priority.
  Job find_job(Worker& worker) noexcept;
  /// Blocks (spins, then parks) until a job is found; an empty Job means "stop".
  Job next_job(Worker& worker) noexcept;

  [[nodiscard]] Stats stats() const noexcept;
  /// Coroutine jobs started or ended off this system's workers (+1 / -1): the rare case of a
  /// coroutine job resumed to its end by a foreign thread. Workers count in WorkerStats.
  void count_foreign_coroutine_job(int delta) noexcept {
    // relaxed: a statistic, pairs with nothing.
    foreign_coroutine_jobs_.fetch_add(delta, std::memory_order_relaxed);
  }

  /// Config::tracing, read at every trace point (one predictable branch when off). Building
  /// with FIBERJOB_DISABLE_TRACING removes the trace points altogether (for measuring what the
  /// branch costs; see docs/game_frame.md).
  [[nodiscard]] bool tracing() const noexcept {
#if defined(FIBERJOB_DISABLE_TRACING)
    return false;
#else
    return tracing_;
#endif
  }
  /// Writes the recorded timeline as Chrome Trace Event JSON (trace.cpp). Any thread.
  void write_trace(std::FILE* out) const;
  /// The trace track of the threads that are not workers (zones, frame marks).
  [[nodiscard]] ExternalTrack& external_track() const noexcept { return external_track_; }

  /// Writes this system's part of write_diagnostics: atomics (relaxed) and fields fixed at
  /// construction; never a counter or a job's memory. The caller holds the registry mutex.
  void describe(std::FILE* out) const noexcept;

  /// A wait or yield took a fiber past the warm Config::fiber_count (the pool grew, or a cold
  /// fiber was reused): counts it and, the first time, says so on stderr naming the field.
  void report_pool_grown(Worker& worker) noexcept;
  /// The first time only: writes `message` (why a wait or yield found no fiber) to stderr.
  void report_exhausted_once(const std::string& message) noexcept;

 private:
  void worker_main(Worker& worker);
  void start_workers();
  void stop_workers() noexcept;
  /// One round of steal attempts over the other workers, from a random victim on, each time
  /// on the deque that `pick(victim)` returns (find_work.cpp only).
  template <typename PickDeque>
  Job steal(Worker& worker, PickDeque pick) noexcept;
  /// steal() on the other workers' deques of `priority` (ready jobs).
  Job steal_ready(Worker& worker, std::size_t priority) noexcept;
  /// steal() on the other workers' yield queues (fibers that yielded there).
  Job steal_yielded(Worker& worker) noexcept;
  /// Takes another worker's next fiber (Worker::next) or the rest of its chain chunk
  /// (Worker::chunk), after a spin phase found nothing else.
  Job steal_next(Worker& worker) noexcept;
  /// Takes a job of `priority` from the injector, plus a share of the rest onto our deque.
  Job pop_injector(Worker& worker, std::size_t priority) noexcept;
  Job spin_for_job(Worker& worker) noexcept;
  /// The worker's next slot (Worker::next), unless a High job waits and it is not High itself.
  Job take_next(Worker& worker) noexcept;
  /// The rest of a chain chunk in the worker's slot (Worker::chunk), left there by a fiber that
  /// suspended mid-chunk, as a Job::ResumeChain.
  Job take_chunk(Worker& worker) noexcept;
  /// find_job's full look: the attached thread's own stack, the injector first every
  /// kInjectorFirstInterval-th look, then look_in_order.
  Job find_job_full(Worker& worker) noexcept;
  /// The order in which a worker looks for work, stated once (find_work.cpp); kAlone: the
  /// worker is alone in its system, so nobody else takes from its queues.
  template <bool kAlone>
  Job look_in_order(Worker& worker) noexcept;
  /// High to Low priority: own deque, injector, the other workers' deques; then the yield
  /// queues, ours first.
  Job look_in_queues(Worker& worker) noexcept;
  /// When the idle park must end at the latest: the earliest timer, or the hang watchdog's
  /// next look (`idle_since_ns` + Config::hang_report_after_ms) while it is on (timer.cpp).
  std::uint64_t park_deadline(std::uint64_t idle_since_ns) const noexcept;
  /// The hang watchdog's look after a park (Config::hang_report_after_ms): when `worker` has
  /// been idle since `idle_since_ns` for the set time, every other worker is parked, jobs are
  /// suspended and nothing pending can wake them, writes the diagnostics once. Restarts the
  /// idle stretch at `now_ns` after each look (timer.cpp).
  void watch_for_hang(const Worker& worker, std::uint64_t& idle_since_ns,
                      std::uint64_t now_ns) noexcept;
  /// True when a thread is attached (AttachedWorker) and its own stack is in no wait: it runs
  /// its own code (a game's main thread between its frame's waits) and may still wake the
  /// suspended jobs, so the hang watchdog holds off (timer.cpp).
  bool attached_thread_may_wake() const noexcept;
  /// Fires the timers that are due (find_job's check, when one is armed; timer.cpp).
  [[gnu::noinline]] void expire_due_timers(Worker& worker) noexcept;
  /// True when some queue (injector, any worker's deque) holds a job that `looking` may take
  /// right now; unlike a look (find_job) it cannot miss work because of a lost race. For
  /// deciding to sleep or stop.
  bool has_visible_work(const Worker& looking) const noexcept;
  /// An attached thread's look at the work it made itself, before it starts another affine
  /// job: its woken fiber (Worker::next), its chain chunk, its own deques, High to Low.
  Job take_own(Worker& worker) noexcept;
  /// A worker thread's look at the resume_on_any hops (push_to_worker_threads); an empty Job
  /// on an attached thread's slot or when none is queued. One load when empty.
  Job take_worker_hop(const Worker& worker) noexcept;

  JobSystem& owner_;
  Config config_;
  /// More than one worker (threads and slots for attached threads): there are thieves and
  /// victims, and idle workers to notify.
  bool several_workers_;
  bool tracing_;
  std::uint64_t trace_origin_ns_;
  mutable ExternalTrack external_track_;
  Context context_;
  FiberPool fibers_;
  /// The pools of Config::stack_classes: class i + 1 is class_pools_[i].
  std::vector<std::unique_ptr<FiberPool>> class_pools_;
  /// The threads of blocking calls (this_fiber::blocking, ctx.blocking), started on demand.
  BlockingPool blocking_;
  RecordPool records_;
  Injector injector_;
  /// resume_on_any hops that only worker threads take (push_to_worker_threads), FIFO; used
  /// only when Config::attachable_threads > 0.
  CountedQueue worker_hops_;
  std::vector<std::unique_ptr<Worker>> workers_;
  EventCount idle_;
  /// Sleeps and timeouts: looked at on every look for work (one relaxed load) and honoured by
  /// the idle park's timeout.
  TimerQueue timers_;
  /// Set once by stop_workers (seq_cst store, then a notify of every worker): false = running,
  /// true = workers leave once they see every queue empty. Its seq_cst loads before parking
  /// pair with the event count's fences (Dekker: stop published vs sleeper announced); the
  /// relaxed loads while spinning and in write_diagnostics are hints. On its own cache line:
  /// idle workers poll it. Ledger: docs/memory_ordering.md, "Event count".
  alignas(kCacheLineBytes) std::atomic<bool> stopping_{false};
  /// false = the workers may still run queued work; true = shut_down has joined them. Set once
  /// by shut_down (seq_cst store, then a seq_cst fence, then its look at the injector); read by
  /// check_stop_after_shutdown (a seq_cst fence after the stop callback queued a resumption,
  /// then a seq_cst load). A Dekker pair: the fences pair with each other, so at least one side
  /// sees the other's write (shut_down the queued resumption, or the callback the flag) and the
  /// late resumption is reported. Publishes no data. Ledger: docs/memory_ordering.md,
  /// "Scheduler bookkeeping".
  std::atomic<bool> workers_gone_{false};
  /// Elects the one report of a stop after the workers stopped, when both sides of the
  /// workers_gone_ pair see the late resumption (relaxed exchange false -> true: pairs with
  /// nothing, publishes no data).
  std::atomic<bool> late_stop_reported_{false};
  /// Elects the one report_pool_grown that prints (relaxed exchange: pairs with nothing).
  std::atomic<bool> growth_reported_{false};
  /// Elects the one hang report (watch_for_hang; relaxed exchange: pairs with nothing).
  std::atomic<bool> hang_reported_{false};
  /// Elects the one report_exhausted_once that prints (relaxed exchange: pairs with nothing).
  std::atomic<bool> exhaustion_reported_{false};
  /// Coroutine jobs started minus ended off this system's workers (count_foreign_coroutine_job;
  /// may dip below 0 between the two halves of one job). Relaxed: a statistic for stats(),
  /// pairs with nothing.
  std::atomic<std::int64_t> foreign_coroutine_jobs_{0};
  /// Link in the list of schedulers kept by keep_forever.
  Scheduler* next_kept_ = nullptr;
};

}  // namespace fiberjob::detail
