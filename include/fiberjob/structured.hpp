#pragma once
/// \file
/// Structured concurrency over `Task<T>`: `sync_wait` (a plain thread runs a task and gets its
/// value), `when_all` (child tasks as parallel jobs, joined), `when_any` (the first to finish
/// wins, the others are stopped and joined), `JobHandle<T>` (one job's value).
/// Every child ends before the call that started it completes, also when one throws; the
/// design follows cppcoro's `sync_wait`/`when_all` and P2300's `sync_wait`. The children get
/// the caller's stop token (`when_any`'s racers one chained to it, as P2300's `when_all`
/// children get a token chained to their receiver's), so a stop reaches the whole tree.

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <stop_token>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "fiberjob/awaiters.hpp"
#include "fiberjob/config.hpp"
#include "fiberjob/context.hpp"
#include "fiberjob/counter.hpp"
#include "fiberjob/job_system.hpp"
#include "fiberjob/task.hpp"

namespace fiberjob {

/// The value `when_all` reports for a `Task<void>` child (P2300 and cppcoro use an empty type
/// the same way): every `Unit` is equal to every other.
struct Unit {
  /// \return true: all `Unit`s are equal.
  friend constexpr bool operator==(Unit, Unit) noexcept { return true; }
};

namespace detail {

/// `T`, or `Unit` for `void`.
template <class T>
using NonVoid = std::conditional_t<std::is_void_v<T>, Unit, T>;

/// Throws Error (BlockingCallInJob) when the caller is a job: sync_wait would block its worker.
void check_sync_wait_caller();
/// Throws Error (CounterMisuse): JobHandle::spawn while its previous job has not ended.
[[noreturn]] void throw_job_handle_busy();
/// Throws Error (CounterMisuse): `call` (get or co_await) on a JobHandle holding no result:
/// never spawned, or its result taken already.
[[noreturn]] void throw_job_handle_empty(const char* call);

/// Throws Error (InvalidArgument) naming `call` when `task` is empty (moved from).
template <class T>
void check_task(const Task<T>& task, const char* call) {
  if (!task.valid()) [[unlikely]]
    throw_empty_task(call);
}

/// The body of one child job: awaits `task` (its frame is the child's own) and stores the
/// value in `slot`. Both live in the frame of the call that spawned the job, which waits for
/// the job before it goes on, so the references stay valid (CP.53).
template <class T>
Task<void> run_into(Task<T>& task, std::optional<NonVoid<T>>& slot) {
  if constexpr (std::is_void_v<T>) {
    co_await task;
    slot.emplace();
  } else {
    slot.emplace(co_await task);
  }
}

/// Spawns `fn` as a job on `counter`, with `stop` when a stop is possible on it (the
/// caller's token: the child sees the caller's stop), else without a token.
template <class F>
void spawn_child(Context& ctx, Counter& counter, F&& fn, const std::stop_token& stop,
                 Priority priority) {
  if (stop.stop_possible()) {
    ctx.spawn(counter, std::forward<F>(fn), stop, priority);
  } else {
    ctx.spawn(counter, std::forward<F>(fn), priority);
  }
}

/// Spawns `run_into(task, slot)` as a job on `counter` (two references: stored in the record).
template <class T>
void spawn_into(Context& ctx, Counter& counter, Task<T>& task, std::optional<NonVoid<T>>& slot,
                const std::stop_token& stop, Priority priority) {
  spawn_child(
      ctx, counter, [&task, &slot] { return run_into(task, slot); }, stop, priority);
}

template <class Tasks, class Slots, std::size_t... I>
void spawn_each([[maybe_unused]] Context& ctx, [[maybe_unused]] Counter& counter,
                [[maybe_unused]] Tasks& tasks, [[maybe_unused]] Slots& slots,
                [[maybe_unused]] const std::stop_token& stop, std::index_sequence<I...>) {
  (spawn_into(ctx, counter, std::get<I>(tasks), std::get<I>(slots), stop, Priority::Normal), ...);
}

}  // namespace detail

/// Runs `task` on `system` from a plain thread and returns its value (nothing for `void`), or
/// rethrows the exception that escaped it.
/// Suspends: no; blocks the calling thread — it parks on a futex until the task has finished,
///   or, on a thread attached with `AttachedWorker` (its own code, outside jobs), runs jobs
///   meanwhile.
/// Lifetime: the task, its value and everything it awaited are finished when this returns.
/// Cost: one job (a pooled record) and one wrapper coroutine frame beside the task's own; the
///   injector push from a plain thread.
/// Errors: `Error` (`BlockingCallInJob`) when called from a job (it would block a worker),
///   also from one an attached thread runs (an affine job, one `run_pending` runs, one its
///   wait runs inline): in a coroutine `co_await` the task, in plain job code use a
///   `JobHandle<T>` and `get()`;
///   `Error` (`InvalidArgument`) for an empty task (moved from); the task's own exception.
/// Thread-safety: any plain thread, any number at once.
/// \param system the job system to run the task on.
/// \param task the task (its body has not started: tasks start lazily).
/// \return the task's value.
template <class T>
T sync_wait(JobSystem& system, Task<T> task) {
  detail::check_sync_wait_caller();
  detail::check_task(task, "sync_wait");
  std::optional<detail::NonVoid<T>> slot;
  Counter done;
  system.run(done, [&task, &slot] { return detail::run_into(task, slot); });
  system.wait(done);  // rethrows the task's exception
  if constexpr (std::is_void_v<T>) {
    return;
  } else {
    return std::move(*slot);
  }
}

/// `co_await when_all(ctx, a(), b(), ...)`: runs the tasks as parallel child jobs (each may be
/// stolen by another worker; the awaiting worker runs those left on its deque inline, newest
/// first) and yields their values, in argument order, as a `std::tuple` (`Unit` for a
/// `Task<void>`).
/// Suspends: yes, until every child has ended — also when one throws: the first exception
///   (the first child to capture one) is rethrown after all of them ended; the others are
///   dropped. Nested calls work (a child may itself `co_await when_all`).
/// Lifetime: the tasks are moved into this call's frame and end before it completes; their
///   values are moved out into the tuple.
/// Cost: this call's frame, and per child one pooled job record and one small wrapper frame
///   from the worker's frame pool, beside the child's own frame: once warm, no global
///   allocation at all.
/// Cancellation: the children are spawned with the calling job's stop token, so its stop
///   reaches them (and their own structured children). The call waits for every child also
///   after a stop (they unwind on their next wait or yield), then throws `Error`
///   (`Cancelled`) unless a child's exception came first.
/// Errors: the first child exception; `Error` (`Cancelled`) when the calling job's stop was
///   requested; `Error` (`InvalidArgument`) for an empty task (moved from), before any child
///   starts; whatever spawning throws (the children already started are joined first).
/// Thread-safety: await it once, from a coroutine.
/// \param ctx the context of the calling job.
/// \param tasks the child tasks (not yet started).
/// \return a task yielding the tuple of values.
template <class... Ts>
Task<std::tuple<detail::NonVoid<Ts>...>> when_all(Context& ctx, Task<Ts>... tasks) {
  (detail::check_task(tasks, "when_all"), ...);
  std::tuple<Task<Ts>&...> children(tasks...);
  std::tuple<std::optional<detail::NonVoid<Ts>>...> slots;
  const std::stop_token stop = ctx.stop_token();
  Counter done;
  detail::spawn_each(ctx, done, children, slots, stop, std::index_sequence_for<Ts...>{});
  co_await detail::join_children(ctx, done);  // every child ended; rethrows the first exception
  detail::throw_if_stopped("co_await when_all");
  co_return std::apply(
      [](auto&... slot) { return std::tuple<detail::NonVoid<Ts>...>(std::move(*slot)...); }, slots);
}

/// `co_await when_all(ctx, std::move(tasks))`: the same for any number of tasks of one type;
/// yields their values in the vector's order (`std::vector<Unit>` for `Task<void>`).
/// Cost: as the variadic form, plus two allocations per call (never per element): the slots
/// the children write to and the result vector.
/// \param ctx the context of the calling job.
/// \param tasks the child tasks (not yet started).
/// \param priority the queue the child jobs go into.
/// \return a task yielding the vector of values.
template <class T>
Task<std::vector<detail::NonVoid<T>>> when_all(Context& ctx, std::vector<Task<T>> tasks,
                                               Priority priority = Priority::Normal) {
  for (const Task<T>& task : tasks) detail::check_task(task, "when_all");
  std::vector<std::optional<detail::NonVoid<T>>> slots(tasks.size());
  const std::stop_token stop = ctx.stop_token();
  Counter done;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    detail::spawn_into(ctx, done, tasks[i], slots[i], stop, priority);
  }
  co_await detail::join_children(ctx, done);  // every child ended; rethrows the first exception
  detail::throw_if_stopped("co_await when_all");
  std::vector<detail::NonVoid<T>> values;
  values.reserve(slots.size());
  for (auto& slot : slots) values.push_back(std::move(*slot));
  co_return values;
}

/// What `when_any` yields: which task finished first (its index in the arguments or the
/// vector) and its value (`Unit` for `Task<void>`).
template <class T>
struct WhenAnyResult {
  std::size_t index;         ///< The winner's position, from 0.
  detail::NonVoid<T> value;  ///< The winner's value.
};

namespace detail {

/// `source.request_stop()` without nesting: a call made while another one runs on this
/// thread (from one of its stop callbacks: a nested when_any's ForwardStop) queues a copy of
/// `source` (which keeps its shared stop state alive) for the outermost call, which requests
/// the queued stops one after the other before it returns. So a chain of N nested when_any
/// calls costs the requester's stack one level, not N (a fiber's stack is small), and the
/// stop has still reached the whole tree when the outermost call returns. Thread-safety: any
/// thread. Never suspends. Allocation: the calling thread's queue grows (amortised) when a
/// chain is longer than any before on that thread; if it cannot, that stop is requested in
/// place. Source: the trampoline of continuation-passing code.
void request_stop_flat(std::stop_source& source) noexcept;

/// Requests a stop on a race's source: the callback that chains the caller's token to it.
struct ForwardStop {
  std::stop_source* target;
  void operator()() const noexcept { request_stop_flat(*target); }
};

/// when_any's shared state, in its frame: the race's stop source and the winner's result.
template <class T>
struct Race {
  static constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::stop_source stop;
  /// Forwards the calling job's stop to `stop` while the race runs (declared after it:
  /// deregistered first). Empty when the caller has no token.
  std::optional<std::stop_callback<ForwardStop>> chain;
  /// kNone until a child finished; then the winner's index (set once, by an acq_rel CAS in
  /// run_racer() that pairs with the other racers' CAS: one winner). The result fields are
  /// published to when_any by the counter's signal and wait, not by this atomic, so when_any
  /// reads it relaxed after its join.
  std::atomic<std::size_t> winner{kNone};
  std::optional<NonVoid<T>> value;  ///< written by the winner only
  std::exception_ptr error;         ///< written by the winner only
};

/// One racer: awaits `task`, and if it is the first to finish, keeps its value (or
/// exception) and requests the stop of the others. Never lets an exception escape to the
/// job's counter (a loser's Cancelled is expected).
template <class T>
Task<void> run_racer(Task<T>& task, Race<T>& race, std::size_t index) {
  std::optional<NonVoid<T>> value;
  std::exception_ptr error;
  try {
    if constexpr (std::is_void_v<T>) {
      co_await task;
      value.emplace();
    } else {
      value.emplace(co_await task);
    }
  } catch (...) {
    error = std::current_exception();
  }
  std::size_t none = Race<T>::kNone;
  // acq_rel: one winner; its writes below are published to when_any by the counter's signal
  // at the job's end (release) and its wait (acquire), not by this CAS.
  if (race.winner.compare_exchange_strong(none, index, std::memory_order_acq_rel)) {
    race.value = std::move(value);
    race.error = std::move(error);
    request_stop_flat(race.stop);  // the losers' nested races: one level of this stack
  }
}

/// Throws Error (InvalidArgument): when_any over no task.
[[noreturn]] void throw_when_any_empty();

}  // namespace detail

/// `co_await when_any(ctx, std::move(tasks))`: runs the tasks as parallel child jobs, each
/// with a stop token of one shared `std::stop_source`; the first to finish (with a value or
/// an exception) wins, and requests a stop on the others — their waits and yields then
/// complete with `Error` (`Cancelled`) and `ctx.stop_token()` reports it, so they unwind.
/// Completes only after every child has ended, so no child outlives the call; yields the
/// winner's index and value, or rethrows the winner's exception. The losers' results and
/// exceptions are dropped.
/// Suspends: yes, until every child has ended. A loser that neither waits, yields nor polls
///   its stop token runs to its end; one suspended on a counter that never reaches zero keeps
///   the call from completing (see `Context::spawn` with a stop token).
/// Cancellation: the racers' source is chained to the calling job's stop token (a
///   `std::stop_callback` in this call's frame), so a stop of the caller stops every racer
///   (and their own structured children) as well; after joining them the call throws `Error`
///   (`Cancelled`).
/// Cost: as `when_all` over a vector, plus one `std::stop_source` (one allocation of its
///   shared state) per call.
/// Errors: the winner's exception; `Error` (`Cancelled`) when the calling job's stop was
///   requested; `Error` (`InvalidArgument`) for an empty vector or an empty task (moved
///   from), before any racer starts.
/// \param ctx the context of the calling job.
/// \param tasks the racing tasks (not yet started), at least one.
/// \return a task yielding the winner's index and value.
template <class T>
Task<WhenAnyResult<T>> when_any(Context& ctx, std::vector<Task<T>> tasks) {
  if (tasks.empty()) detail::throw_when_any_empty();
  for (const Task<T>& task : tasks) detail::check_task(task, "when_any");
  detail::Race<T> race;
  if (const std::stop_token caller = ctx.stop_token(); caller.stop_possible()) {
    race.chain.emplace(caller, detail::ForwardStop{&race.stop});  // runs now if stopped already
  }
  Counter done;
  for (std::size_t i = 0; i < tasks.size(); ++i) {
    ctx.spawn(
        done, [&task = tasks[i], &race, i] { return detail::run_racer(task, race, i); },
        race.stop.get_token());
  }
  co_await detail::join_children(ctx, done);  // every racer ended (they never throw)
  detail::throw_if_stopped("co_await when_any");
  if (race.error) std::rethrow_exception(race.error);
  // relaxed: pairs with nothing; join_children's wait (acquire) already ordered the CAS before.
  co_return WhenAnyResult<T>{race.winner.load(std::memory_order_relaxed), std::move(*race.value)};
}

/// `co_await when_any(ctx, a(), b(), ...)`: the same for tasks given one by one (all of one
/// type `Task<T>`); the index is the argument's position.
/// \param ctx the context of the calling job.
/// \param first the first racing task.
/// \param rest the other racing tasks.
/// \return a task yielding the winner's index and value.
template <class T, class... Rest>
requires(std::is_same_v<Rest, Task<T>>&&...) Task<WhenAnyResult<T>> when_any(Context& ctx,
                                                                             Task<T> first,
                                                                             Rest... rest) {
  std::vector<Task<T>> tasks;
  tasks.reserve(1 + sizeof...(Rest));
  tasks.push_back(std::move(first));
  (tasks.push_back(std::move(rest)), ...);
  co_return co_await when_any(ctx, std::move(tasks));
}

/// The value of one spawned job: a counter and a slot for the value, so a job that returns a
/// value (an A* job that returns its path) can be spawned and awaited without hand-written
/// shared state. Lives where the caller puts it (a coroutine frame, a struct): no allocation
/// of its own.
///
/// ```cpp
/// fiberjob::JobHandle<Path> path;
/// path.spawn(ctx, find_path(map, from, to));    // Task<Path>, runs as a job
/// /* ... other work ... */
/// Path p = co_await path;                       // or path.get() in plain job code
/// ```
///
/// Lifetime: the destructor joins — if the job is still running (the owner's scope was left
/// by an exception), it waits for it (see `~Counter`). Not copyable or movable (the job
/// writes into it). Reusable once the value was taken.
/// Cancellation: the job gets the spawning job's stop token, so a stop of the spawner reaches
/// it (and its own structured children).
/// Thread-safety: one owner; `spawn` and the awaits are not concurrent with each other.
template <class T>
class JobHandle {
 public:
  /// An empty handle: no job yet.
  JobHandle() = default;
  JobHandle(const JobHandle&) = delete;
  JobHandle& operator=(const JobHandle&) = delete;
  /// Joins a job still running (see the class comment).
  ~JobHandle() = default;

  /// Starts `task` as a child job, with the calling job's stop token; the value goes into this
  /// handle (a result not taken from a previous job is dropped).
  /// Suspends: no. Cost: one pooled record, one small wrapper frame beside the task's.
  /// Errors: `Error` (`CounterMisuse`) when the previous job has not ended; `Error`
  ///   (`InvalidArgument`) for an empty task (moved from); what spawning throws (nothing is
  ///   started then).
  /// \param ctx the context of the calling job.
  /// \param task the task to run.
  /// \param priority the queue the job goes into.
  void spawn(Context& ctx, Task<T> task, Priority priority = Priority::Normal) {
    if (!done_.done()) detail::throw_job_handle_busy();
    detail::check_task(task, "JobHandle::spawn");
    value_.reset();
    pending_ = false;
    // The task lives in the job's callable, which the job keeps until its coroutine ends.
    detail::spawn_child(
        ctx, done_,
        [task = std::move(task), slot = &value_]() mutable {
          return detail::run_into(task, *slot);
        },
        ctx.stop_token(), priority);
    pending_ = true;
  }

  /// The same from a plain thread (or any code holding the job system).
  /// \param system the job system to run the task on.
  /// \param task the task to run.
  /// \param priority the queue the job goes into.
  void spawn(JobSystem& system, Task<T> task, Priority priority = Priority::Normal) {
    spawn(system.context(), std::move(task), priority);
  }

  /// True once the job has ended (value or exception ready). Suspends: no.
  /// \return whether the job has ended.
  [[nodiscard]] bool done() const noexcept { return done_.done(); }

  /// Plain code: waits for the job (`JobSystem::wait`: stackful in a job, parks a plain
  /// thread) and moves its value out, or rethrows its exception. Either way the result is
  /// taken: the handle is empty again.
  /// Errors: `Error` (`CounterMisuse`) when the handle holds no result (never spawned, or
  ///   taken already by `get` or `co_await`); the job's exception; `Error` (`Cancelled`) in a
  ///   job whose stop was requested: at once while the job runs (the result stays, and the
  ///   destructor joins the job), and after it ended as `co_await` does (the result is
  ///   dropped).
  /// \param system the job system (for the wait).
  /// \return the value (nothing for `void`).
  T get(JobSystem& system) {
    if (!pending_) detail::throw_job_handle_empty("JobHandle::get");
    try {
      system.wait(done_);
      // A join, as co_await: a job that ended already completes the wait, not the stop.
      detail::throw_if_stopped("JobHandle::get");
    } catch (...) {
      pending_ = !done_.done();  // the job's exception is its result: taken
      throw;
    }
    pending_ = false;
    return take();
  }

  /// `co_await handle`: waits for the job to end (also after a stop of the awaiting job: the
  /// job got that stop too), then yields its value (moved out) or rethrows its exception; in
  /// a job whose stop was requested it throws `Error` (`Cancelled`) instead of the value.
  /// Either way the result is taken: the handle is empty again.
  /// Errors: `Error` (`CounterMisuse`) when the handle holds no result (never spawned, or
  ///   taken already), thrown by the `co_await`.
  /// \return the awaiter.
  auto operator co_await() & {
    if (!pending_) detail::throw_job_handle_empty("co_await JobHandle");
    return Awaiter{*this, detail::JoinAwaiter(done_, nullptr)};
  }

 private:
  struct Awaiter {
    JobHandle& handle;
    detail::JoinAwaiter join;
    bool await_ready() const noexcept { return join.await_ready(); }
    bool await_suspend(std::coroutine_handle<> coroutine) { return join.await_suspend(coroutine); }
    T await_resume() {
      handle.pending_ = false;  // the job has ended: its result is taken now
      join.await_resume();      // rethrows the job's exception
      detail::throw_if_stopped("co_await JobHandle");
      return handle.take();
    }
  };

  T take() {
    if constexpr (std::is_void_v<T>) {
      value_.reset();
    } else {
      T value = std::move(*value_);
      value_.reset();
      return value;
    }
  }

  std::optional<detail::NonVoid<T>> value_;
  bool pending_ = false;  ///< spawned, and its result (value or exception) not taken yet
  Counter done_;          // last: destroyed first, so it joins while value_ still exists
};

}  // namespace fiberjob
