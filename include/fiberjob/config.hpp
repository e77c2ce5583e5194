#pragma once
/// \file
/// Construction-time settings of a `JobSystem`, job priorities and the idle policy.

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace fiberjob {

/// Scheduling class of a job. Workers look for High work before Normal before Low, in each
/// source in turn (own deque, injector, other workers' deques).
enum class Priority : std::uint8_t {
  High = 0,    ///< Critical-path work: looked for first.
  Normal = 1,  ///< The default.
  Low = 2,     ///< Background work: runs when nothing else is ready.
};

/// Number of priority levels (size of per-priority arrays).
inline constexpr std::size_t kPriorityCount = 3;

/// What a worker does when it finds no job.
enum class IdlePolicy : std::uint8_t {
  Park,  ///< Spin briefly (a few microseconds), then sleep on an event count until work arrives.
  Spin,  ///< Never sleep: poll for work forever (lowest wake latency, one core busy per worker).
};

/// Hardware threads of this machine (at least 1); the default `Config::worker_count`.
/// Thread-safety: any thread.
/// \return std::thread::hardware_concurrency(), or 1 when that is unknown (0).
[[nodiscard]] std::uint32_t hardware_worker_count() noexcept;

/// The name of a stack class (`StackClass::name`): a string that may also be set from a null
/// pointer, so that the `JobSystem` constructor reports that mistake as `Error`
/// (`InvalidConfig`) naming the field, where a `std::string` would throw `std::logic_error` at
/// the assignment. Converts from `const char*` and `std::string`, and to `const std::string&`.
/// Thread-safety: a value type.
class StackClassName {
 public:
  /// \param name a C string (copied), or nullptr (rejected by the JobSystem constructor).
  StackClassName(const char* name) : null_(name == nullptr), value_(name != nullptr ? name : "") {}
  /// \param name the name (moved in).
  StackClassName(std::string name) noexcept : value_(std::move(name)) {}
  /// \return true when set from a null pointer.
  [[nodiscard]] bool is_null() const noexcept { return null_; }
  /// \return true when the name is empty (or was set from a null pointer).
  [[nodiscard]] bool empty() const noexcept { return value_.empty(); }
  /// \return the name ("" when set from a null pointer).
  [[nodiscard]] const std::string& str() const noexcept { return value_; }
  /// \return the name, as str().
  operator const std::string&() const noexcept { return value_; }

 private:
  bool null_ = false;
  std::string value_;
};

/// An extra class of fiber stacks (`Config::stack_classes`): a pool of fibers with a stack
/// size of its own, for the few jobs that need deep stacks, so the many small jobs do not pay
/// for them (Naughty Dog's engine keeps 128 fibers of 64 KiB and 32 of 512 KiB). A job asks
/// for one with `JobOptions::stack_class`.
struct StackClass {
  /// Named in messages (the stack-overflow report, pool exhaustion). Non-empty, not null.
  StackClassName name = "large";
  /// Usable stack of each fiber of this class in bytes, as `Config::fiber_stack_size`.
  std::size_t stack_size = 512 * 1024;
  /// Fibers made up front and kept warm, as `Config::fiber_count`; in [0, max_fiber_count].
  std::uint32_t fiber_count = 0;
  /// At most this many fibers of this class at once, as `Config::max_fiber_count`; >= 1. A
  /// job of the class that finds all of them in use waits until one is free (kept by the
  /// class's pool: no worker spins for it). A plain job on a fiber of the class holds it while
  /// suspended in a wait; at most `max_fiber_count - 1` may do so at once, so that a job of the
  /// class can always start (a waiting parent's children among them): the wait that would hold
  /// the last one throws `Error` (`FiberPoolExhausted`) naming the class, as a default-class
  /// wait does at `Config::max_fiber_count`. Set it above the number of the class's plain jobs
  /// that wait at once (coroutine jobs hold none while they wait).
  std::uint32_t max_fiber_count = 32;
};

/// Stack classes a job system can have: the default one (`Config::fiber_stack_size`) and up to
/// three in `Config::stack_classes` (a job carries its class in two bits of its queue entry).
inline constexpr std::size_t kMaxStackClasses = 4;

/// Settings of a `JobSystem`, checked when the `JobSystem` is constructed.
/// A field out of range makes the constructor throw `Error` (`ErrorCode::InvalidConfig`) with a
/// message naming the field. All sizes are in bytes, all counts in units of the named thing.
struct Config {
  /// Worker threads to start (>= 1). Default: the hardware threads of the machine.
  std::uint32_t worker_count = hardware_worker_count();

  /// Threads that may join the system as workers at the same time (`AttachedWorker`), such as a
  /// game's main thread that runs jobs while it waits for its frame, as TBB's thread that
  /// enters an arena and enkiTS's main thread do. Each is a worker slot without a thread of its
  /// own: its deque, caches and statistics, indices `worker_count` and up. In [0, 64].
  /// Default 0.
  std::uint32_t attachable_threads = 0;

  /// Pin worker i to the i-th CPU that the affinity mask of the thread constructing the
  /// `JobSystem` allows (the process's mask under `taskset`), so pinning never leaves that set.
  /// Requires worker_count <= hardware threads and <= the CPUs of that mask (else `Error`,
  /// `InvalidConfig`, naming both fields and the allowed CPU count). Default off.
  bool pin_workers = false;

  /// Fibers allocated up front and kept warm (their stack pages stay resident between uses).
  /// Every worker runs on one fiber, and each plain job suspended in `this_fiber::wait` or
  /// `this_fiber::yield` holds one more; a suspended coroutine job holds none (but one that
  /// leaves a scope by an exception while a `Counter` or `JobHandle` there has pending jobs
  /// holds one until they end: that join is stackful). When more are
  /// needed the pool grows on demand, one chunk of fibers at a time, up to `max_fiber_count`;
  /// fibers beyond `fiber_count` give their stack pages back to the OS each time they return
  /// to the pool (`madvise`), so the resident set does not stay at the high-water mark. Set it
  /// to the usual peak of suspended plain jobs (and such joins) plus the workers. In
  /// [1, max_fiber_count].
  /// Default 128.
  std::uint32_t fiber_count = 128;

  /// Hard limit of the fiber pool: at most this many fibers exist at once. A wait or a yield
  /// that needs a fiber beyond it throws `Error` (`FiberPoolExhausted`) naming this field.
  /// Each fiber costs its stack and guard in address space (reserved, not resident until
  /// touched) and two memory mappings, so `2 * max_fiber_count` must stay below the OS limit
  /// `vm.max_map_count` (65,530 by default on Linux; checked at construction). In
  /// [worker_count + attachable_threads + 1, 2^20]. Default 16,384.
  std::uint32_t max_fiber_count = 16384;

  /// Usable stack of each fiber in bytes (>= kMinFiberStackSize; rounded up to the page size).
  /// A guard page below each stack turns an overflow into a clear "fiber stack overflow" report,
  /// after which the process dies by SIGSEGV.
  /// Size it at twice the stack the deepest job needs: a job waiting in `this_fiber::wait` or
  /// `co_await ctx.wait` runs its own children inline on its stack while less than half of it
  /// is used, so a child may get only the half that is left (oneTBB's nested stealing has the
  /// same rule). Default 64 KiB.
  std::size_t fiber_stack_size = 64 * 1024;

  /// Extra stack classes: `JobOptions::stack_class` = i + 1 runs a job on a fiber of
  /// `stack_classes[i]`; class 0 is the default pool above (`fiber_count`, `max_fiber_count`,
  /// `fiber_stack_size`, named "default"). At most `kMaxStackClasses - 1` entries; each
  /// field is checked as its default-class counterpart, and the mappings of all classes
  /// together against vm.max_map_count. Default: none.
  std::vector<StackClass> stack_classes;

  /// Threads that run blocking calls (`this_fiber::blocking`, `co_await ctx.blocking`), at
  /// most, started one at a time when a call finds none idle; further calls queue (FIFO). In
  /// [1, 1024]. Default 4.
  std::uint32_t max_blocking_threads = 4;

  /// What idle workers do. Default: park (no CPU burnt while idle).
  IdlePolicy idle_policy = IdlePolicy::Park;

  /// Hang watchdog, in milliseconds; 0 (the default) turns it off. When every worker has been
  /// parked for longer than this while jobs stay suspended (fibers waiting, or coroutine jobs
  /// alive) and no timer, blocking call or queued job is pending that could wake them, and no
  /// attached thread (AttachedWorker) is outside its waits (running its own code, it may still
  /// wake them), the system writes `write_diagnostics` to stderr once, after a line naming
  /// this field: every suspended plain job and what it waits on (with its JobOptions::name);
  /// every suspended coroutine job with its name, await chain and what it waits on when
  /// `track_coroutine_jobs` is on, else their count. A thread that is neither a worker nor
  /// attached, e.g. a main thread that sets an Event later, is not seen: the report says so;
  /// attach that thread, or set this above the longest such wait. Costs nothing while workers
  /// are busy: the parked workers' futex waits time out after this long to look
  /// (IdlePolicy::Park only).
  std::uint32_t hang_report_after_ms = 0;

  /// Record a timeline (job run segments, fiber suspend/resume, steals, idle time per worker)
  /// for `JobSystem::write_trace`. Off by default; when off the cost is one predictable branch
  /// per event site.
  bool tracing = false;

  /// Keep a registry of live coroutine jobs, so that `write_diagnostics`, the hang watchdog and
  /// the gdb extension (`fiberjob coroutines`, docs/debugging.md; also on a core file) can list
  /// each with its JobOptions::name, its await chain and what it waits on. Off by default:
  /// linking each coroutine job in and out costs about a quarter of the time of a coroutine job
  /// that does nothing else (bench row 1c, fib_co); without it they are only counted. What a
  /// coroutine job waits on (counter, Event, Mutex, ConditionVariable, Semaphore, timed wait,
  /// sleep, blocking call) is recorded in its root either way: a few loads (its chain of
  /// tasks) and two relaxed stores when it starts a wait, one store when it resumes. Plain
  /// jobs and suspended fibers are listed either way, at no cost.
  bool track_coroutine_jobs = false;

  /// Capture the await chain of every exception that leaves a `Task` of this system's
  /// coroutine jobs (from the task it escaped up to the job's root task), for
  /// `fiberjob::await_chain_of` (docs/debugging.md). Off by default: then an exception leaving
  /// a task costs one relaxed load more. On, each task an exception leaves takes a process-wide
  /// mutex and copies a chain (about 0.5 KiB) into a ring of the last 8 such exceptions, which
  /// keeps them alive until overwritten. Tasks' links are kept either way.
  bool capture_await_chains = false;

  /// Events each worker can record while tracing (32 bytes each, allocated up front; in
  /// [1, 2^26]), also for each attachable slot, and for the track of the threads that are not
  /// workers (allocated on its first zone or frame mark). In all, trace_events_per_worker x
  /// (worker_count + attachable_threads + 1) x 32 bytes must not exceed half of the machine's
  /// physical memory. When full, further events are dropped and counted (write_trace reports
  /// them), or in ring mode (`trace_ring_frames`) the oldest are overwritten. Default 2^18 (8 MiB).
  std::size_t trace_events_per_worker = std::size_t{1} << 18;

  /// Ring mode of the trace: 0 (the default) keeps the first events and drops later ones when
  /// a buffer is full; N > 0 makes every trace buffer a ring that overwrites its oldest events,
  /// and `JobSystem::write_trace` writes only the last N frames (from the N-th last
  /// `JobSystem::trace_frame_mark` on; everything kept when there are fewer marks). For
  /// capturing the frames before a hitch in a long run. If the buffers did not hold all N
  /// frames, write_trace says so on stderr. Ignored while `tracing` is off.
  std::uint32_t trace_ring_frames = 0;

  /// Smallest accepted `fiber_stack_size` in bytes.
  static constexpr std::size_t kMinFiberStackSize = 16 * 1024;
};

}  // namespace fiberjob
