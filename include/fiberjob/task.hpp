#pragma once
/// \file
/// `Task<T>`: the coroutine type of fiberjob — the return type of coroutine jobs and of the child
/// coroutines they `co_await`.

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "fiberjob/detail/coroutine_frame.hpp"
#include "fiberjob/detail/coroutine_registry.hpp"
#include "fiberjob/job_local.hpp"

namespace fiberjob {

template <class T = void>
class Task;

namespace detail {

class Scheduler;
struct JobRecord;

/// Ends a coroutine job whose root task has finished: destroys its callable, keeps `error` on
/// the job's counter, returns the record and signals the counter (last). Any thread.
void finish_task_job(Scheduler& scheduler, JobRecord* record, std::exception_ptr error) noexcept;
/// Throws Error (InvalidArgument): `call` was given an empty Task (moved from or released).
[[noreturn]] void throw_empty_task(const char* call);

class TaskPromiseBase;
/// Live job systems with Config::capture_await_chains on (await_chain.cpp): while it is 0, an
/// exception leaving a task costs nothing more. seq_cst increments and decrements; the relaxed
/// loads pair with nothing (as g_tracking_systems).
extern std::atomic<int> g_capturing_systems;
/// Records the await chain of `promise` (the task that `error` escaped) for await_chain_of,
/// when its job's system has Config::capture_await_chains on. Any thread; never throws.
void capture_exception_await_chain(const TaskPromiseBase& promise,
                                   const std::exception_ptr& error) noexcept;
/// Waits until no thread walks await chains (write_diagnostics): called before a task's frame
/// is freed while a job system tracks coroutine jobs. Any thread.
void wait_for_await_chain_walkers() noexcept;

/// The resume function of a coroutine: g++ and clang++ keep it in the first word of the frame
/// (the coroutine ABI both follow). Names the coroutine in await chains.
inline const void* resume_function(std::coroutine_handle<> coroutine) noexcept {
  return *static_cast<const void* const*>(coroutine.address());
}

class TaskPromiseBase {
 public:
  /// Coroutine frames come from the calling thread's recycling pool (coroutine_frame.hpp): a
  /// warm worker creates tasks without the global allocator.
  static void* operator new(std::size_t bytes) { return allocate_coroutine_frame(bytes); }
  static void operator delete(void* frame, std::size_t bytes) noexcept {
    free_coroutine_frame(frame, bytes);
  }

  TaskPromiseBase() noexcept = default;
  TaskPromiseBase(const TaskPromiseBase&) = delete;
  TaskPromiseBase& operator=(const TaskPromiseBase&) = delete;
  /// A job's root task leaves the registry of live coroutine jobs with its frame.
  ~TaskPromiseBase() {
    if (job_links_.shard != kCoroutineShards) unlink_coroutine_job(*this);
    // relaxed: a hint; nonzero since before any job of a tracking system ran (pairs with nothing).
    if (g_tracking_systems.load(std::memory_order_relaxed) != 0) [[unlikely]] {
      wait_for_await_chain_walkers();  // write_diagnostics may be reading this promise
    }
  }

  /// Lazy start: a task runs when awaited (or when a job starts it).
  std::suspend_always initial_suspend() noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() noexcept { return false; }
    template <class Promise>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> self) noexcept {
      TaskPromiseBase& promise = self.promise();
      if (promise.continuation_) return promise.continuation_;  // symmetric transfer
      if (promise.job_record_ != nullptr) {
        // The root task of a job: the job ends here, not when resume() first returned.
        Scheduler& scheduler = *promise.job_scheduler_;
        JobRecord* record = promise.job_record_;
        std::exception_ptr error = std::move(promise.error_);
        destroy_job_locals(promise.job_root_.locals);  // the job's JobLocal values end with it
        self.destroy();
        finish_task_job(scheduler, record, std::move(error));
      }
      return std::noop_coroutine();
    }
    void await_resume() noexcept {}
  };

  FinalAwaiter final_suspend() noexcept { return {}; }
  void unhandled_exception() noexcept {
    error_ = std::current_exception();
    // relaxed: a hint; capture_exception_await_chain checks the job's Config (pairs with nothing).
    if (g_capturing_systems.load(std::memory_order_relaxed) != 0) [[unlikely]] {
      capture_exception_await_chain(*this, error_);
    }
  }

  /// Makes this task the root of a job: at its end it destroys itself and ends the job. Links
  /// it into the registry of live coroutine jobs (Config::track_coroutine_jobs; debuggers).
  /// \param code the root coroutine's resume function (resume_function): names it in chains.
  /// \param name the job's JobOptions::name (nullptr: none), for traces and diagnostics.
  void bind_job(Scheduler& scheduler, JobRecord* record, const void* code,
                const char* name) noexcept {
    job_scheduler_ = &scheduler;
    job_record_ = record;
    code_ = code;
    job_root_.task = this;
    job_root_.name = name;
    // relaxed: a hint; the link itself checks the job system's Config (pairs with nothing).
    if (g_tracking_systems.load(std::memory_order_relaxed) != 0) [[unlikely]] {
      link_coroutine_job(scheduler, *this);
    }
  }
  /// The root of a job: where the job's JobLocal values live.
  JobLocalEntry** job_locals() noexcept { return &job_root_.locals; }

 protected:
  void rethrow_if_error() {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  template <class T>
  friend class fiberjob::Task;
  friend void link_coroutine_job(Scheduler& scheduler, TaskPromiseBase& promise) noexcept;
  friend void unlink_coroutine_job(TaskPromiseBase& promise) noexcept;
  friend std::size_t live_coroutine_jobs(const Scheduler& scheduler) noexcept;
  friend std::size_t describe_coroutine_jobs(std::FILE* out, const Scheduler& scheduler) noexcept;
  friend class AwaitChainAccess;

  std::coroutine_handle<> continuation_;
  std::exception_ptr error_;
  Scheduler* job_scheduler_ = nullptr;
  JobRecord* job_record_ = nullptr;
  JobRoot job_root_;  ///< The root task's: the job's JobLocal values and lock identity
  /// Registry links (coroutine_registry.hpp); only a job's root task is linked.
  CoroutineJobLinks job_links_{nullptr, nullptr, kCoroutineShards};
  /// The task this one is suspended on in a `co_await` of a Task (nullptr when none): the
  /// downward link of the await chain, for debuggers and write_diagnostics. Written by the
  /// task's own thread, read by chain walkers under the walker lock (await_chain.cpp). The
  /// release store of a callee pairs with the walkers' acquire load (the callee's links are
  /// seen); the relaxed store of nullptr pairs with nothing (the walker lock orders unlinking).
  std::atomic<TaskPromiseBase*> awaiting_{nullptr};
  /// The upward link: the task whose `co_await` of this one is in progress (nullptr for a job's
  /// root, or when something other than a Task awaits it). Set when awaited.
  TaskPromiseBase* awaited_by_ = nullptr;
  /// Where this task is awaited: the return address of the (out-of-line) await_suspend that
  /// started it, inside the awaiting coroutine's resume function; `info line *(ADDR-1)` is the
  /// `co_await`. Set when awaited.
  const void* awaited_at_ = nullptr;
  /// This coroutine's resume function (resume_function): set when awaited or bound to a job.
  const void* code_ = nullptr;
};

template <class T>
class TaskPromise final : public TaskPromiseBase {
 public:
  Task<T> get_return_object() noexcept;
  template <class U>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value_.emplace(std::forward<U>(value));
  }
  T result() {
    rethrow_if_error();
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <>
class TaskPromise<void> final : public TaskPromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void result() { rethrow_if_error(); }
};

}  // namespace detail

/// A lazily started coroutine that produces a `T` (or nothing), in the style of cppcoro's
/// `task<T>`.
///
/// * As a job: `run`/`spawn` accept a callable returning `Task<>`; the job's counter is
///   signalled when the coroutine finishes (its final suspend), not when it first suspends, and
///   the callable — with its captures — lives until then, also when the coroutine suspends on a
///   foreign awaitable and is resumed on another thread.
/// * As a child: `T value = co_await child();` starts the child at once on the same thread
///   (symmetric transfer, no queueing, no stack growth) and resumes the parent when it finishes.
///   An exception escaping the child is rethrown at the parent's `co_await`.
///
/// Allocation: one coroutine frame per task, made when the coroutine is called, from the
/// calling thread's recycling pool (frames up to 4 KiB; larger ones from `operator new`); a
/// warm worker makes frames without calling the global allocator.
/// Thread-safety: a task is awaited once, by one coroutine. Suspends: `co_await task` suspends
/// the awaiting coroutine until the child finishes.
template <class T>
class [[nodiscard]] Task {
 public:
  /// The coroutine promise (the C++ coroutine protocol); not for direct use.
  using promise_type = detail::TaskPromise<T>;
  /// The type that `co_await task` yields.
  using value_type = T;

  /// Takes over `other`'s coroutine; `other` becomes empty.
  /// \param other the task to move from.
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, {})) {}
  /// Destroys this task's coroutine (if any: it must not be running) and takes over `other`'s.
  /// \param other the task to move from.
  /// \return `*this`.
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, {});
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  /// Destroys a task that was never awaited (its body never ran) or that has finished.
  ~Task() {
    if (handle_) handle_.destroy();
  }

  /// Starts the child and suspends the caller until it finishes; yields its value or rethrows
  /// its exception. Resumes on the thread (and fiber) where the child finished. Awaiting an
  /// empty task (moved from) throws `Error` (`InvalidArgument`) without suspending.
  /// \return the awaiter, which yields `T` or rethrows the child's exception.
  auto operator co_await() && noexcept { return Awaiter{handle_}; }
  /// The same for a named (lvalue) task: `co_await task;` awaits it in place.
  /// \return the awaiter, which yields `T` or rethrows the child's exception.
  auto operator co_await() & noexcept { return Awaiter{handle_}; }

  /// True when the task holds a coroutine: false once moved from or released (as
  /// `std::future::valid`). Awaiting an empty task, or passing one to `sync_wait`, `when_all`,
  /// `when_any` or `JobHandle::spawn`, throws `Error` (`InvalidArgument`).
  /// Suspends: no. Thread-safety: reads this task only.
  /// \return whether there is a coroutine to await.
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(handle_); }

  /// Hands the coroutine over (for the job machinery); the Task becomes empty.
  /// \return the coroutine handle; the caller now owns (and destroys) it.
  [[nodiscard]] std::coroutine_handle<promise_type> release() noexcept {
    return std::exchange(handle_, {});
  }

 private:
  friend class detail::TaskPromise<T>;
  explicit Task(std::coroutine_handle<promise_type> handle) noexcept : handle_(handle) {}

  struct Awaiter {
    std::coroutine_handle<promise_type> child;
    /// The awaiting task's promise when it is a Task (its awaiting_ link), else nullptr.
    detail::TaskPromiseBase* parent_promise = nullptr;
    bool await_ready() const noexcept { return !child || child.done(); }
    /// Out of line, so that its return address is the `co_await` in the awaiting coroutine
    /// (the await chain's source location of that coroutine).
    template <class ParentPromise>
    [[gnu::noinline]] std::coroutine_handle<> await_suspend(
        std::coroutine_handle<ParentPromise> parent) noexcept {
      detail::TaskPromiseBase& callee = child.promise();
      callee.continuation_ = parent;
      callee.awaited_at_ = __builtin_return_address(0);
      callee.code_ = detail::resume_function(child);
      if constexpr (std::is_base_of_v<detail::TaskPromiseBase, ParentPromise>) {
        parent_promise = &parent.promise();
        callee.awaited_by_ = parent_promise;
        // release: pairs with the chain walkers' acquire loads (await_chain.cpp): they see the
        // callee's awaited_at_ and code_.
        parent_promise->awaiting_.store(&callee, std::memory_order_release);
      }
      return child;
    }
    T await_resume() {
      if (!child) detail::throw_empty_task("co_await task");  // await_ready let it through
      unlink();
      return child.promise().result();
    }
    /// Also when the awaiting coroutine is destroyed while suspended here: before the child.
    ~Awaiter() { unlink(); }
    /// Ends the parent's downward link. relaxed: the walker lock orders it before the child's
    /// frame is freed (pairs with the walkers' lock, await_chain.cpp).
    void unlink() noexcept {
      if (parent_promise != nullptr) {
        parent_promise->awaiting_.store(nullptr, std::memory_order_relaxed);
      }
    }
  };

  std::coroutine_handle<promise_type> handle_;
};

namespace detail {

template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}

inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}

}  // namespace detail
}  // namespace fiberjob
