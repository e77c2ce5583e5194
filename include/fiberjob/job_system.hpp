#pragma once
/// \file
/// `JobSystem`: worker threads, the fiber pool and the queues.

#include <cstddef>
#include <memory>
#include <span>
#include <stop_token>
#include <string>
#include <utility>

#include "fiberjob/awaiters.hpp"
#include "fiberjob/config.hpp"
#include "fiberjob/context.hpp"
#include "fiberjob/counter.hpp"
#include "fiberjob/detail/job_record.hpp"
#include "fiberjob/job_options.hpp"
#include "fiberjob/stats.hpp"
#include "fiberjob/task.hpp"

namespace fiberjob {

/// A fiber job system in the line of Naughty Dog's (Gyrling, "Parallelizing the Naughty Dog
/// Engine Using Fibers", GDC 2015): `Config::worker_count` worker threads, each running jobs on
/// pooled stackful fibers (Boost.Context) and balancing load by work stealing (Chase-Lev deques,
/// Lê et al., PPoPP 2013). A job that never suspends runs inline on the fiber that picked it up,
/// with no context switch; a job that waits or yields leaves its fiber suspended and the worker
/// continues on a fresh pooled fiber.
///
/// Thread-safety: `run`, `wait`, `stats` may be called from any thread, concurrently.
/// Destruction: finishes all queued and running work (including suspended jobs whose counters
/// complete), then stops the workers. Jobs still suspended on counters that will never reach
/// zero are reported on stderr with their number and are never resumed (destructors of
/// objects on their stacks or in their coroutine frames do not run). Their wait nodes stay
/// linked in those counters, so in that case the system's memory (fiber stacks, records,
/// queues) is deliberately kept allocated: a later signal of such a counter is then harmless
/// (the resumption is queued into the stopped system and never runs). Such a counter still
/// has to reach zero before it is destroyed. Do not call `run`, signal counters that
/// suspended jobs wait on, or call `request_stop()` on a `std::stop_source` whose token a
/// suspended job of this system was spawned with, concurrently with the destructor: request
/// the stops first (then the destructor drains the stopped jobs like any other work). A stop
/// requested by one of the system's own jobs while the destructor drains (a `when_any` winner
/// stopping its losers) is part of that work and fine. A stop that wakes a job after the
/// workers have stopped (from another thread during the destruction, or after it) cannot run
/// it: the job stays suspended for ever, and the stop reports the misuse on stderr, once per
/// system ("request_stop() came too late for the JobSystem's destructor"). Destroying it from
/// one of its own jobs aborts with a message (it would wait for itself).
class JobSystem {
 public:
  /// Starts the workers and allocates every fiber stack up front (mmap with a guard page each).
  /// Errors: `Error` (`InvalidConfig`) naming the field when `config` is out of range;
  ///   std::system_error when the OS refuses threads or memory.
  /// \param config the settings; checked here.
  explicit JobSystem(const Config& config = Config{});
  /// Finishes the queued and running work, then stops and joins the workers (see the class
  /// comment for jobs that never resume). Must not run on one of this system's own jobs.
  ~JobSystem();
  JobSystem(const JobSystem&) = delete;
  JobSystem& operator=(const JobSystem&) = delete;

  /// Starts `fn` (`void(Context&)`, `void()`, `Task<>(Context&)` or `Task<>()`) as a job that
  /// signals `counter` when it ends (a coroutine job: at its final suspend).
  /// From a worker of this system the job goes onto that worker's deque; from any other thread
  /// into the injector (FIFO per submitting thread).
  /// Suspends: no. Allocation: none for callables up to 40 bytes once warm, except the
  ///   injector's own block allocation the first time a new thread submits.
  /// Errors: rethrows an exception from copying `fn`; `Error` (`CounterMisuse`).
  /// \param counter gets one unit now, signalled when the job ends.
  /// \param fn the job, copied or moved into the job's record.
  /// \param priority the queue the job goes into (High runs before Normal before Low).
  template <detail::JobCallable F>
  void run(Counter& counter, F&& fn, Priority priority = Priority::Normal) {
    detail::JobRecord* record = detail::make_record(*impl_, counter, std::forward<F>(fn));
    detail::submit_one(*impl_, counter, record, priority);
  }

  /// Starts `fn` as a job with a stop token; see `Context::spawn(counter, fn, stop, priority)`.
  /// \param counter gets one unit now, signalled when the job ends.
  /// \param fn the job.
  /// \param stop the job's stop token.
  /// \param priority the queue the job goes into.
  template <detail::JobCallable F>
  void run(Counter& counter, F&& fn, std::stop_token stop, Priority priority = Priority::Normal) {
    run(counter, detail::Stoppable<std::decay_t<F>>{std::forward<F>(fn), std::move(stop)},
        priority);
  }

  /// `run` with per-spawn options: the priority, the stack class the job runs on and a name
  /// (see `JobOptions`). Same contract as `run`, and Errors: `Error` (`InvalidArgument`) when
  /// `options.stack_class` names no class of this system (nothing is queued then).
  /// \param counter gets one unit now, signalled when the job ends.
  /// \param options how to spawn the job.
  /// \param fn the job, copied or moved into the job's record.
  template <detail::JobCallable F>
  void run(Counter& counter, const JobOptions& options, F&& fn) {
    detail::check_stack_class(*impl_, options.stack_class);
    detail::JobRecord* record = detail::make_record(*impl_, counter, std::forward<F>(fn));
    record->name = options.name;
    detail::submit_one_in_class(*impl_, counter, record, options.priority, options.stack_class);
  }

  /// Starts one job per element of `jobs` (each copied), all signalling `counter`; queued in
  /// bulk (one counter update for all, one wake-up per chunk of 64). Same contract as `run`.
  /// All or nothing: every element is copied before anything is added or queued, so if a copy
  /// throws, the copies made so far are destroyed, `counter` is unchanged and no job runs.
  /// \param counter gets one unit per element of `jobs`.
  /// \tparam F the job type (the span's element type, may be const).
  /// \tparam Extent the span's extent: `std::span{jobs}` of a C array or a `std::array` has a
  ///   fixed one, of a `std::vector` a dynamic one; both are accepted.
  /// \param jobs the jobs, each copied into a job record.
  /// \param priority the queue the jobs go into.
  template <detail::JobCallable F, std::size_t Extent>
  void run(Counter& counter, std::span<F, Extent> jobs, Priority priority = Priority::Normal) {
    detail::submit_span(*impl_, counter, std::span<F>(jobs), priority);
  }

  /// Blocks until `counter` reaches zero, then rethrows the first exception a job on it threw.
  /// On a plain thread: parks the thread on a futex (no spinning) until the last signal.
  /// From a job (on a worker fiber): same as `this_fiber::wait` — the fiber suspends and the
  ///   worker keeps running other jobs.
  /// On an attached thread (`AttachedWorker`): runs jobs on pooled fibers until the counter is
  ///   zero; when no fiber can be had (`Config::max_fiber_count` in use), parks instead.
  /// Thread-safety: any thread; any number of waiters per counter. Allocation: none.
  /// Errors: from a job, as `this_fiber::wait` (`Error` (`FiberPoolExhausted`) at
  ///   `Config::max_fiber_count`, `Error` (`Cancelled`) in a job whose stop was requested,
  ///   unless the counter is at zero already); the counter's captured exception.
  /// \param counter the counter to wait for.
  void wait(Counter& counter);

  /// `co_await js.schedule()`: continues the awaiting coroutine (ours or a foreign one) on a
  /// worker of this system; no suspension when already on one. See `ScheduleAwaiter`.
  /// \return an awaiter; awaiting it does not throw.
  [[nodiscard]] ScheduleAwaiter schedule() noexcept { return ScheduleAwaiter(*impl_); }

  /// The context every job of this system receives (valid as long as the system).
  /// \return the system's one `Context`.
  [[nodiscard]] Context& context() noexcept;

  /// Counters since construction. Thread-safety: any thread; lock-free reads.
  /// \return a snapshot of the statistics summed over the workers (not a consistent cut).
  [[nodiscard]] Stats stats() const noexcept;

  /// Writes the timeline recorded so far (Config::tracing) to `path` as Chrome Trace Event
  /// JSON, which Perfetto (ui.perfetto.dev) and chrome://tracing open: one track per worker
  /// with job run segments, coroutine resumptions and idle (parked) time, and instant events
  /// for fiber suspend/resume and steals. Best called between frames; events recorded while it
  /// writes may be left out. When a worker's buffer filled up (Config::trace_events_per_worker)
  /// and dropped events, the JSON says how many (`otherData.dropped_events`) and so does a line
  /// on stderr. Thread-safety: any thread.
  /// Errors: `Error` (`InvalidConfig`) when tracing is off; std::system_error when the file
  /// cannot be written.
  /// \param path the file to create or overwrite.
  void write_trace(const std::string& path) const;

  /// Marks the start of frame `frame` in the trace: an instant event across every track
  /// ("frame N"), recorded on the track of the threads that are not workers. No-op unless
  /// Config::tracing (one predictable branch). Thread-safety: any thread (takes that track's
  /// mutex). Does not suspend. Never throws (a mark that cannot be stored is dropped).
  /// \param frame the frame's number (its low 32 bits are kept).
  void trace_frame_mark(std::uint64_t frame) noexcept;

  /// The validated configuration the system runs with.
  /// \return the configuration, with defaults filled in.
  [[nodiscard]] const Config& config() const noexcept;

  /// Number of worker threads.
  /// \return `Config::worker_count` (attached-thread slots not included).
  [[nodiscard]] std::size_t worker_count() const noexcept;

  /// Index of the worker of this system whose thread calls this, in [0, worker_count()), or
  /// `Context::kNotAWorker` on any other thread (a plain thread, a worker of another system).
  /// Same as `context().worker_index()`. A job may continue on another worker after it
  /// suspends: read it again after every suspension, never keep it across one.
  /// Thread-safety: any thread. Allocation: none. Complexity: one thread-local read.
  /// \return the worker index, or `Context::kNotAWorker`.
  [[nodiscard]] std::size_t current_worker_index() const noexcept;

 private:
  std::unique_ptr<detail::Scheduler> impl_;
};

}  // namespace fiberjob
