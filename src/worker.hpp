#pragma once
// Worker: one thread, its deques, its native stack seen as a fiber, its caches and counters.

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>

#include "affine_inbox.hpp"
#include "counter_wait_list.hpp"
#include "fiber.hpp"
#include "fiberjob/config.hpp"
#include "fiberjob/detail/cache_line.hpp"
#include "injector.hpp"
#include "record_pool.hpp"
#include "trace.hpp"
#include "work_stealing_deque.hpp"

namespace fiberjob::detail {

class Scheduler;

/// Per-worker statistics. Single writer (the worker's own thread), so increments are a relaxed
/// load and store, not a locked RMW; `JobSystem::stats()` reads them from any thread.
struct WorkerStats {
  std::atomic<std::uint64_t> jobs_run{0};
  std::atomic<std::uint64_t> steals{0};
  std::atomic<std::uint64_t> switches{0};
  std::atomic<std::uint64_t> parks{0};
  std::atomic<std::uint64_t> parked_ns{0};  ///< summed over this worker's parks
  std::atomic<std::uint64_t> pool_exhausted{0};
  std::atomic<std::uint64_t> coroutine_jobs_started{0};
  std::atomic<std::uint64_t> coroutine_jobs_ended{0};

  static void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by = 1) noexcept {
    // relaxed: single writer; readers want a statistic, no ordering (pairs with nothing).
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
};

/// What a worker is doing, for diagnostics (hang reports). Written by the worker only, with
/// relaxed stores; read by `dump_job_systems`.
enum class WorkerPhase : std::uint8_t { Starting, Running, Searching, Parked, Stopped };

/// One worker thread. Everything but `deques` (stolen from by others) and `stats` (read by
/// stats()) is touched only by the worker's own thread.
struct alignas(kCacheLineBytes) Worker {
  Worker(Scheduler& owner, std::uint32_t worker_index, Injector& injector,
         std::size_t trace_capacity);

  Scheduler* scheduler;
  /// `scheduler` when it does not trace (Config::tracing), else nullptr; fixed at start-up. A
  /// spawn compares it with its system: one test tells it is on one of that system's workers
  /// and records no trace event (submit_one).
  Scheduler* untraced_scheduler = nullptr;
  std::uint32_t index;
  /// A slot for an attached thread (AttachedWorker), with no thread of its own. Its next slot
  /// is never used (a woken job goes onto its deque, stealable at once, since the thread may be
  /// busy outside the job system), and its `native` is pinned (Fiber::pinned).
  bool is_slot = false;
  /// Chase-Lev deques, one per priority: the owner pushes and pops at the bottom (LIFO),
  /// thieves steal at the top (FIFO).
  WorkStealingDeque deques[kPriorityCount];
  /// Fibers that yielded on this worker, oldest first: the owner pushes at the bottom and
  /// takes from the top with steal() (FIFO), like any thief. Looked at after every ready job
  /// (own deques, injector, others' deques), and first on every kInjectorFirstInterval-th look
  /// so a yielder is not starved by work that keeps coming.
  WorkStealingDeque yielded{64};
  /// The fiber this worker runs next (Job::bits(), 0 = none): a single waiter that one of our
  /// jobs just woke (Go's runnext). The waker's writes are hot in this core's cache, and a
  /// ping-pong between two jobs stays on one worker instead of bouncing between cores. Only the
  /// owner fills it; the owner takes it with an exchange, other workers with a CAS, and only
  /// after a whole idle spin phase without other work (so the owner normally gets it, yet a
  /// fiber never waits behind a long job while a worker is idle).
  alignas(kCacheLineBytes) std::atomic<std::uintptr_t> next{0};
  /// The waiters of the chain chunk this worker is making runnable (run_chain) that it has not
  /// reached yet: a Job::ResumeChain's bits, 0 = none. Used when the system has several
  /// workers; same rules as `next`: only the thread running this worker fills it, takes one
  /// waiter at a time with an exchange and puts the rest back, and another worker takes all of
  /// it with a CAS after a whole idle spin phase. So a waiter never stays behind a step that
  /// blocks this worker (a spin, an OS wait); what a fiber that suspended mid-chunk left here
  /// is taken by the worker's next look (find_job).
  std::atomic<std::uintptr_t> chunk{0};
  /// This worker's injector tokens (faster, and FIFO among its own pushes).
  Injector::Tokens tokens;
  /// The thread's own stack, as the target of the first and the source of the last switch.
  Fiber native;
  /// The first fiber, reserved at construction so a busy pool cannot starve a starting worker.
  Fiber* first = nullptr;
  /// The fiber running on this worker now (set on every arrival, by finish_switch).
  Fiber* current = nullptr;
  RecordCache records;
  /// Signals not yet applied to their counter (one counter at a time): consecutive signals of
  /// one counter cost one atomic update instead of one each, and the counter's line stays away
  /// from the other workers. Two sources:
  ///   * plain jobs that ended on this worker: held only while the next job this worker runs is
  ///     one of the same counter, which is pending itself, so the counter cannot reach zero any
  ///     earlier (the dispatch loop, and the children a waiting job runs inline: run_own_children
  ///     subtracts them when it reads the count and applies them before it returns);
  ///   * Counter::signal() from a coroutine of a wake chain's chunk (`combining_signals`): held
  ///     until the chunk ends, which delays that counter's zero by at most the rest of the
  ///     chunk's steps on this worker.
  /// Applied (flush_deferred_signals) before anything else runs, before a switch and before
  /// idling.
  Counter* deferred_counter = nullptr;
  std::int64_t deferred_signals = 0;
  /// Coroutine waits on one counter not yet linked into its wait list: the nodes of the
  /// coroutines of a wake chain's chunk that `co_await`ed `deferred_link_counter` (while
  /// `combining_signals`), joined through WaitNode::next, newest first. They are spliced onto
  /// the counter's list with one CAS (CounterWaitList::link_chunk) when the deferred signals
  /// are applied: the end of the chunk, a suspension of the fiber, or a wait on another
  /// counter. Nobody else can see or resume them until then.
  Counter* deferred_link_counter = nullptr;
  WaitNode* deferred_link_first = nullptr;  ///< newest node: the list's head once spliced
  WaitNode* deferred_link_last = nullptr;   ///< oldest node: its `next` gets the old head
  std::int64_t deferred_links = 0;
  /// True while a coroutine of a wake chain's chunk runs inline (run_chain): its signals are
  /// combined into `deferred_counter`, and its waits on a counter into `deferred_link_counter`;
  /// both are applied when the chunk ends, or earlier when the fiber suspends or they target
  /// another counter. Waiters of one gate that each signal one "done" counter and wait on the
  /// next gate then cost each of those counters one atomic update per chunk, not one per
  /// waiter (docs/decisions.md, "Signals combined per chunk" and "Waits combined per chunk, too").
  bool combining_signals = false;
  WorkerStats stats;
  /// What the worker is doing, for write_diagnostics only. Written by the worker's thread,
  /// read by any thread; relaxed everywhere, pairs with nothing (it only makes the
  /// diagnostic read race-free).
  std::atomic<WorkerPhase> phase{WorkerPhase::Starting};
  /// Timeline events recorded on this worker's thread (empty unless Config::tracing).
  TraceBuffer trace;
  std::uint64_t rng_state;
  /// Looks for work left until the next one that starts at the injector (see find_job).
  std::uint32_t injector_countdown = 1;
  std::thread thread;
  /// Slots only: taken by an attached thread (CAS false -> true in Scheduler::attach, release
  /// store of false in detach).
  std::atomic<bool> slot_taken{false};
  /// Slots only: the attached thread's own stack (`native`), suspended in a wait, may run again
  /// (set by whoever woke it; taken by the slot's thread in find_job). On its own line: other
  /// threads write it.
  alignas(kCacheLineBytes) std::atomic<bool> native_ready{false};
  /// Slots only: wake_pinned calls that still use this worker and its scheduler after their
  /// store of native_ready (a counter of another job system may wake an attached thread, and
  /// that thread may then destroy this system while the waker still notifies it). Incremented
  /// relaxed before the release store of native_ready (which orders it before whatever the
  /// woken thread does next); decremented with release after the notify, pairing with the
  /// acquire load in Scheduler::shut_down, which waits for zero before the workers go.
  std::atomic<std::uint32_t> pinned_wakers{0};
  /// Slots only (nullptr for worker threads): the thread-affine jobs of the attached thread.
  std::unique_ptr<AffineInbox> inbox;
};

/// Aborts with a message: a deque could not grow, so a job would be lost.
[[noreturn]] void die_deque_full() noexcept;

/// Pushes `job` onto `worker`'s own deque (the caller runs on `worker`'s thread). Growing the
/// deque may allocate; if that fails the job would be lost, so this aborts with a message.
/// Inline: it is on every spawn and wake.
inline void push_local(Worker& worker, Job job) noexcept {
  try {
    worker.deques[static_cast<std::size_t>(job.priority())].push(job.bits());
  } catch (...) {
    die_deque_full();
  }
}

/// True when one of `worker`'s own deques may hold a job (owner thread; see
/// WorkStealingDeque::empty_for_owner: may say true after thieves took everything).
inline bool has_local_jobs(const Worker& worker) noexcept {
  for (const WorkStealingDeque& deque : worker.deques) {
    if (!deque.empty_for_owner()) return true;
  }
  return false;
}

/// Applies `worker`'s deferred signals (Worker::deferred_counter), which must exist.
void apply_deferred_signals(Worker& worker) noexcept;

/// Links `worker`'s deferred waits (Worker::deferred_link_counter), which must exist.
void apply_deferred_links(Worker& worker) noexcept;

/// flush_deferred_signals' work when there is some: links the deferred waits, then applies
/// the deferred signals, each if any (out of line).
void apply_deferred(Worker& worker) noexcept;

/// Links `worker`'s deferred waits, then applies its deferred signals, if any. Links first: a
/// deferred signal may be the one that completes the counter they wait on (the splice's
/// re-check would catch that too, one drain later). Owner thread only. Inline: two loads and
/// one branch when there is nothing to apply (every wait and yield passes here).
inline void flush_deferred_signals(Worker& worker) noexcept {
  if ((reinterpret_cast<std::uintptr_t>(worker.deferred_link_counter) |
       reinterpret_cast<std::uintptr_t>(worker.deferred_counter)) != 0) [[unlikely]] {
    apply_deferred(worker);
  }
}

/// Holds the wait of a coroutine on `counter` (its `node`, filled in and not yet published) in
/// `worker`'s deferred links, linking those of another counter first. Only while
/// `combining_signals`: the end of run_chain's chunk, or a suspension, is the flush point.
inline void defer_link(Worker& worker, Counter& counter, WaitNode& node) noexcept {
  if (worker.deferred_link_counter != &counter) {
    if (worker.deferred_link_counter != nullptr) apply_deferred_links(worker);
    worker.deferred_link_counter = &counter;
    worker.deferred_link_last = &node;
    worker.deferred_links = 0;
    node.next = nullptr;
  } else {
    node.next = worker.deferred_link_first;
  }
  node.chunk_next = node.next;  // link_chunk walks these, as the drainer may rewrite `next`
  // relaxed: published by link_chunk's splice CAS (release); cleared with release there after
  // its last touch of the counter (pairs with wait_for_linker).
  node.linking.store(1, std::memory_order_relaxed);
  CounterWaitList::note_linker(counter);  // debug builds: a held wait counts as a link
  worker.deferred_link_first = &node;
  ++worker.deferred_links;
}

/// Holds one signal of `counter` in `worker`'s deferred signals (applying those of another
/// counter first). The caller guarantees a flush point: the dispatch loop before any job of
/// another counter, or the end of run_chain's chunk.
inline void defer_signal(Worker& worker, Counter& counter) noexcept {
  if (worker.deferred_counter == &counter) {
    ++worker.deferred_signals;
    return;
  }
  flush_deferred_signals(worker);
  worker.deferred_counter = &counter;
  worker.deferred_signals = 1;
}

/// Aborts with a message: the yield queue could not grow, so a fiber would be lost.
[[noreturn]] void die_yield_queue_full() noexcept;

/// Queues a fiber that yielded on `worker` (the caller runs on `worker`'s thread) behind the
/// ones that yielded before it. Aborts with a message if the queue cannot grow. Inline: it is
/// on every yield.
inline void push_yielded(Worker& worker, Job job) noexcept {
  try {
    worker.yielded.push(job.bits());
  } catch (...) {
    die_yield_queue_full();
  }
}

/// Makes the woken fiber `job` (a Job::Resume) `worker`'s next job if the slot is free, else
/// pushes it onto the deque (the caller runs on `worker`'s thread).
void push_next(Worker& worker, Job job) noexcept;

/// Records what `worker` is doing (relaxed: a diagnostic, pairs with nothing).
inline void set_phase(Worker& worker, WorkerPhase phase) noexcept {
  worker.phase.store(phase, std::memory_order_relaxed);
}

/// The worker whose thread calls this, or nullptr on a plain thread.
///
/// Never inlined, and with a compiler barrier: the compiler may otherwise keep the address of
/// the thread_local across a fiber switch it sees as an ordinary call and, after the fiber
/// migrated, read the old thread's slot (reproduced with g++ 12 and clang 14 at -O2 -fPIC).
/// Call it again after every suspension; never keep its result across one.
Worker* current_worker() noexcept;

/// True when `worker` (nullptr allowed) is one of `scheduler`'s workers or attached threads.
inline bool is_worker_of(const Worker* worker, const Scheduler& scheduler) noexcept {
  return worker != nullptr && worker->scheduler == &scheduler;
}

/// The calling thread's Worker if it is one of `scheduler`'s, else nullptr. Same rule as
/// current_worker: call it again after every suspension; never keep its result across one.
inline Worker* current_worker_of(const Scheduler& scheduler) noexcept {
  Worker* worker = current_worker();
  return is_worker_of(worker, scheduler) ? worker : nullptr;
}

/// The fiber running a job on `worker` (the caller's own Worker, from current_worker()):
/// nullptr when `worker` is nullptr or its thread runs no job (its native stack, unless it
/// is an attached thread's own, pinned one). Same rule as current_worker for the result's use.
inline Fiber* running_fiber(const Worker* worker) noexcept {
  if (worker == nullptr) return nullptr;
  Fiber* fiber = worker->current;
  return fiber != nullptr && (state_of(*fiber) != FiberState::Native || fiber->pinned) ? fiber
                                                                                       : nullptr;
}

/// Binds the calling thread to `worker` (nullptr: unbind). Worker threads only.
void set_current_worker(Worker* worker) noexcept;

}  // namespace fiberjob::detail
