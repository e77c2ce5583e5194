#pragma once
// Fiber: one pooled stackful execution context, and the hand-off a switch leaves for its target.

#include <atomic>
#include <boost/context/fiber.hpp>
#include <cstddef>
#include <cstdint>

#include "fiberjob/config.hpp"
#include "fiberjob/counter.hpp"
#include "fiberjob/detail/cache_line.hpp"
#include "fiberjob/detail/wait_node.hpp"
#include "fiberjob/detail/wait_queue.hpp"
#include "fiberjob/job_local.hpp"
#include "job.hpp"
#include "sanitizer.hpp"

namespace fiberjob::detail {

class Scheduler;
struct Worker;

/// What the fiber we switch to must do for the fiber we leave, once the leaving fiber's stack has
/// stopped running (see switch_to in fiber_switch.cpp for why it cannot be done before).
struct Handoff {
  enum class Action : std::uint8_t {
    None,           ///< Nothing to publish (a thread entering its first fiber, retirement).
    ReleaseToPool,  ///< `from` finished its work: return it to the fiber pool.
    LinkToCounter,  ///< `from` waits: link its wait node into `counter`, then re-check.
    Reschedule,     ///< `from` yields: queue `Job::Resume(from)` on the worker's yield queue.
    LinkToQueue,    ///< `from` waits on a primitive: run `from->linker` on its node.
  };
  Fiber* from = nullptr;
  Action action = Action::None;
  Counter* counter = nullptr;
};

/// Life cycle, for shutdown accounting: Pooled → Running → (Suspended → Running)* → Pooled.
enum class FiberState : std::uint8_t { Pooled, Running, Suspended, Native };

/// A pooled fiber (or, with state Native, a worker thread's own stack seen as a fiber so that
/// every switch has the same shape). Fields written by the fiber's resumer before a switch
/// (`worker`, `handoff`, `pending`) are read by the fiber after it; the switch orders them.
struct alignas(kCacheLineBytes) Fiber {
  /// The suspended continuation while the fiber is not running; empty while it runs. Stored by
  /// whichever fiber ran next (finish_switch), before anything publishes this fiber.
  boost::context::fiber context;
  /// The worker whose thread runs (or will run) this fiber; set by the resumer at every switch,
  /// so it is always the current thread's worker while the fiber runs. Never cache it across a
  /// suspension.
  Worker* worker = nullptr;
  Scheduler* scheduler = nullptr;
  /// Left by the fiber that switched to us; performed on arrival.
  Handoff handoff;
  /// A job the resumer already dequeued for us (when it suspended and took this fiber from the
  /// pool); run before looking for more.
  Job pending;
  /// The intrusive node linked into a counter while this fiber waits on it.
  WaitNode node;
  /// run_chain: the waiters of the chunk this fiber is making runnable that it has not reached
  /// yet (linked through WaitNode::next), and their chain's priority. They go back to the
  /// worker's deque as a Job::ResumeChain (release_held_chain) when this fiber suspends, so no
  /// waiter stays behind a suspended stack.
  WaitNode* held_chain = nullptr;
  Priority held_chain_priority = Priority::Normal;
  /// Priority of the job running on this fiber; its resumption is queued at this priority.
  Priority priority = Priority::Normal;
  /// The counter the running job signals when it ends (to reject a wait on it: it would never
  /// return).
  Counter* job_counter = nullptr;
  /// The stop token of the running job (nullptr when it was spawned without one): read by
  /// Context::stop_token and by waits and yields, which then complete with Cancelled. Points
  /// into the job's record (its callable), valid while the job runs. Next to
  /// job_counter: a nested run keeps and restores both (KeepOuterJob) in one 16-byte move.
  const std::stop_token* job_stop = nullptr;
  /// Mutexes locked through plain `Mutex::lock()` / `try_lock()` by the code running on this
  /// fiber and not unlocked yet. A job (or a coroutine's run segment) that ends with more than
  /// it began with would leave the lock to whatever runs on this pooled fiber next: the
  /// dispatch loop stops with a message instead (run_job, resume_coroutine).
  std::uint32_t plain_locks = 0;
  /// Run segments begun on this fiber (a job started, a coroutine resumed): only ever grows,
  /// so (fiber, segment) names one stretch of code that ran here without a suspension between.
  /// Mutex compares it to find a coroutine that holds a guard calling plain lock() on the same
  /// stack (it would wait for itself).
  std::uint64_t segment = 0;
  /// Where the running job's JobLocal list head lives: `root` for a plain job the dispatch loop
  /// runs, a local of run_job for one run nested on a waiting job's stack (run_own_children,
  /// run_affine), the root promise of a coroutine job. A pooled fiber points at `root` between
  /// jobs (set once, on entry; everything that points it elsewhere restores it); a thread's own
  /// stack (FiberState::Native) is nullptr outside jobs.
  JobLocalEntry** job_locals = nullptr;
  /// The JobRoot of the plain jobs the dispatch loop runs on this fiber, one after the other:
  /// kept here rather than built per job (run_job<false> only cleans it when a job dirtied it).
  /// Its `task` stays nullptr (a plain job's root), so `name` and `waits_on*` are never used.
  JobRoot root;
  /// Tracing: when the current run segment of this fiber's job began (ns); on an attached
  /// thread's own stack outside jobs, when its code last began to run on its slot (attach or
  /// the last resume): the zones there are clipped to it (trace_scope_end).
  std::uint64_t segment_start_ns = 0;
  /// Tracing only: suspensions of this fiber (waits and yields that switched away) while the
  /// system traces; only ever grows. A job run nested on a waiting job's stack
  /// (run_own_children, run_affine) compares it to tell whether the outer job's segment was
  /// cut by a suspension (run_job). Owner only.
  std::uint32_t suspensions = 0;
  /// Tracing: the current run segment's slice is recorded already (a coroutine job's last
  /// segment, by its final suspend before its signal: finish_task_job); the code that ran the
  /// segment records none and clears it. Owner only.
  bool segment_recorded = false;
  /// The running job's name (JobOptions::name; static storage), or nullptr: names its trace
  /// segments and, while suspended, its line in write_diagnostics. Written by the fiber's
  /// owner, read by write_diagnostics from any thread; relaxed, pairs with nothing
  /// (docs/memory_ordering.md, "Diagnostics-only atomics").
  std::atomic<const char*> job_name{nullptr};
  /// The counter this fiber is suspended on (diagnostics only; nullptr when not waiting).
  /// Written by the fiber's owner, read by write_diagnostics from any thread; relaxed, pairs
  /// with nothing (docs/memory_ordering.md, "Diagnostics-only atomics").
  std::atomic<Counter*> waiting_on{nullptr};
  /// The primitive this fiber is suspended on and what it is (WaitLinker::object and ::what;
  /// diagnostics only; nullptr when not waiting on one). Never dereferenced by the reports.
  std::atomic<const void*> waiting_on_primitive{nullptr};
  std::atomic<const char*> waiting_on_what{nullptr};
  /// Written only by the thread that owns the fiber at that moment (ordered by the switch and
  /// the queues); atomic (relaxed) so that diagnostics may read it from any thread.
  std::atomic<FiberState> state{FiberState::Pooled};
  bool started = false;  ///< The Boost.Context fiber was constructed (lazily, on first use).
  bool quit = false;     ///< Set by retirement: leave the dispatch loop and return.
  /// An attached thread's own stack (AttachedWorker): suspends like a fiber, but is resumed
  /// only by its own thread (Worker::native_ready), never queued where another could take it.
  bool pinned = false;
  /// The stack class of the pool this fiber belongs to (Config::stack_classes; 0 = default):
  /// where it goes back to, and which jobs may start on it. Fixed at construction.
  std::uint8_t stack_class = 0;
  std::uint32_t index = 0;
  /// Link in the pool's free stack (index + 1, 0 = end). Atomic because a popper may read it
  /// while the fiber is being pushed again (ABA is stopped by the pool's tag, not by this).
  /// Relaxed loads and stores only (src/fiber_pool.cpp): the store in push() is published by
  /// the release CAS on the list head, which pairs with the acquire load and CAS in pop().
  std::atomic<std::uint32_t> next_free{0};
  /// Lowest address of the frames that stay live while the fiber is in the pool (the dispatch
  /// loop's, set just before it switches away to be released; nullptr before the first
  /// release). A cold fiber's stack pages below it, less a margin, go back to the OS.
  void* live_frames_floor = nullptr;
  /// Usable stack: [stack_bottom, stack_bottom + stack_size). For an attached thread's own
  /// stack (pinned), the thread's stack as the OS reports it.
  void* stack_bottom = nullptr;
  std::size_t stack_size = 0;
  SanitizerStack san;
  /// Handoff::Action::LinkToQueue: how the next fiber links this fiber's node into the
  /// primitive it waits on (Event, Mutex, ...). Written by this fiber before it suspends.
  WaitLinker linker;
};

/// The fiber's state (relaxed: ordered by the switches and queues that hand the fiber over;
/// the atomic only makes diagnostic reads from other threads race-free).
inline FiberState state_of(const Fiber& fiber) noexcept {
  return fiber.state.load(std::memory_order_relaxed);
}
inline void set_state(Fiber& fiber, FiberState state) noexcept {
  fiber.state.store(state, std::memory_order_relaxed);  // relaxed: see state_of
}

/// True while a job (or a coroutine's run segment) runs on `fiber`, whose trace slice a
/// suspension ends: always on a pooled fiber (it suspends only inside a job); on a thread's own
/// stack only inside a job run there (affine, or a child run inline by a wait), which sets
/// `job_counter` until it ends. Owner only.
inline bool runs_job_segment(const Fiber& fiber) noexcept {
  return state_of(fiber) != FiberState::Native || fiber.job_counter != nullptr;
}

}  // namespace fiberjob::detail
