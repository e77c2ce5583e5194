#pragma once
/// \file
/// Blocking calls (marl's `blocking_call`): run a function that blocks the OS thread (a file
/// read, a DNS lookup, a `sleep`) on a separate, bounded, lazily started thread pool of the job
/// system, while the job that asked is suspended: `this_fiber::blocking(fn)` from plain code,
/// `co_await ctx.blocking(fn)` from a coroutine. Workers never stall on it.

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "fiberjob/awaiters.hpp"
#include "fiberjob/detail/stop_wake.hpp"
#include "fiberjob/detail/wait_node.hpp"

namespace fiberjob {

namespace detail {

class Scheduler;

/// One blocking call in flight: lives in the waiter (the suspended fiber's stack, the awaiter
/// in the coroutine frame) and is linked into the pool's queue (intrusive: no allocation).
/// Whoever takes it off the queue, under the pool's mutex, owns it: a pool thread (which runs
/// it, then wakes the waiter) or the stop of the waiting job (which wakes the waiter with the
/// call not run: StopWake's protocol, `unlink` = BlockingPool::unlink_queued).
struct BlockingCall {
  /// Runs the function on a pool thread and keeps its result or exception.
  void (*run)(BlockingCall& call) noexcept = nullptr;
  BlockingCall* next = nullptr;  ///< The pool's FIFO (under its mutex).
  WaitNode* node = nullptr;      ///< The waiter to wake once `run` returned.
  void* pool = nullptr;          ///< The BlockingPool that queues it.
  /// The stop side, armed only in a job whose token can be stopped: a stop while the call is
  /// queued takes it off the queue. Disarmed by the waiter once woken, before anything else.
  StopWait stop;
};

/// The calling plain code's side: on a job's fiber, suspends the fiber until a pool thread of
/// the fiber's job system ran `call` (resumes on any worker), or until the job's stop took the
/// call off the queue before a pool thread did (`call` did not run; the caller sees the stop);
/// elsewhere (a plain thread) runs it inline. Errors: std::system_error when no pool thread
/// exists and none can be started, Error (FiberPoolExhausted) as `this_fiber::wait` (nothing
/// ran then).
void run_blocking(BlockingCall& call);
/// The coroutine side: queues `call` for `scheduler`'s pool and links `node` for `coroutine`
/// (resumed on a worker of `scheduler`), with `call.stop` armed as in run_blocking (the
/// awaiter disarms it first thing when resumed). Returns true when suspended; false when the
/// job's stop came first (nothing queued). Errors: as run_blocking, before anything is
/// queued.
bool suspend_blocking(Scheduler& scheduler, BlockingCall& call, WaitNode& node,
                      std::coroutine_handle<> coroutine);

/// A call of `F` with its result (or exception) kept for the waiter.
template <class F>
struct BlockingCallOf : BlockingCall {
  using Result = std::invoke_result_t<F&>;
  using Stored = std::conditional_t<std::is_void_v<Result>, bool, Result>;

  explicit BlockingCallOf(F& function) noexcept : fn(function) { run = &invoke; }
  static void invoke(BlockingCall& base) noexcept {
    auto& self = static_cast<BlockingCallOf&>(base);
    try {
      if constexpr (std::is_void_v<Result>) {
        self.fn();
        self.result.emplace(true);
      } else {
        self.result.emplace(self.fn());
      }
    } catch (...) {
      self.error = std::current_exception();
    }
  }
  Result take() {
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<Result>) return std::move(*result);
  }

  F& fn;
  std::optional<Stored> result;
  std::exception_ptr error;
};

}  // namespace detail

/// `co_await ctx.blocking(fn)`: runs `fn()` on the job system's blocking-call pool (see the
/// file comment) and resumes the coroutine on a worker with its result. The coroutine (never
/// the fiber) is suspended meanwhile; the worker runs other jobs. No allocation: the call
/// and its wait node live in this awaiter, `fn` is moved into it.
/// Errors: rethrows what `fn` threw; std::system_error (thrown by co_await, before `fn`
/// runs) when no pool thread exists and none can be started; Error (Cancelled) in a job whose
/// stop was requested, as `this_fiber::blocking` (a queued call is taken off the queue and
/// never runs; a running `fn` is waited for first).
/// \tparam F the function type: callable as `fn()`.
template <class F>
class [[nodiscard]] BlockingAwaiter {
 public:
  /// Made by `Context::blocking`; not for direct use.
  /// \param scheduler the job system whose pool runs `fn` and whose worker resumes us.
  /// \param fn the blocking function.
  BlockingAwaiter(detail::Scheduler& scheduler,
                  F fn) noexcept(std::is_nothrow_move_constructible_v<F>)
      : scheduler_(scheduler), fn_(std::move(fn)), call_(fn_) {}
  BlockingAwaiter(const BlockingAwaiter&) = delete;
  BlockingAwaiter& operator=(const BlockingAwaiter&) = delete;

  /// \return false: the call always goes to the pool.
  bool await_ready() const noexcept { return false; }
  /// Queues the call; a worker resumes the coroutine once it returned, or once the job's stop
  /// took it off the queue before a pool thread did (`fn` never runs then). In a job whose stop
  /// was requested, queues nothing (`fn` never runs; await_resume throws).
  /// \param coroutine the awaiting coroutine.
  /// \return true; false when the job's stop was requested.
  bool await_suspend(std::coroutine_handle<> coroutine) {
    if (detail::stop_requested(detail::current_job_stop())) return false;
    return detail::suspend_blocking(scheduler_, call_, node_, coroutine);
  }
  /// \return what `fn` returned; rethrows what it threw. Errors: Error (Cancelled) when the
  ///   job's stop was requested before the call, while it was queued (`fn` did not run), or
  ///   while `fn` ran (its result is dropped).
  decltype(auto) await_resume() {
    call_.stop.disarm();  // first: waits for a stop callback still running elsewhere
    detail::throw_if_stopped("co_await ctx.blocking(fn)");
    return call_.take();
  }

 private:
  detail::Scheduler& scheduler_;
  F fn_;
  detail::BlockingCallOf<F> call_;
  detail::WaitNode node_;
};

namespace this_fiber {

/// Runs `fn()`, a function that blocks its OS thread, on the job system's blocking-call pool
/// and returns its result; the calling job's fiber is suspended meanwhile (the worker runs
/// other jobs) and resumes on any worker. The pool has at most
/// `Config::max_blocking_threads` threads, started on first need; calls beyond them queue
/// (FIFO). On a plain thread (not a job) `fn` simply runs inline: that thread may block.
/// Suspends: yes, on a job's fiber. Allocation: none (the call lives on the fiber's stack).
/// Errors: rethrows what `fn` threw; std::system_error when no pool thread exists and none can
/// be started; Error (FiberPoolExhausted) as `wait` — both before `fn` runs. Error (Cancelled)
/// in a job spawned with a stop token whose stop was requested: at once, without running
/// `fn`, when the stop came before the call; promptly, without running `fn`, when it comes
/// while the call is still queued (the pool's threads are all busy): the stop takes the call
/// off the queue under the pool's mutex, and exactly one of the stop and a pool thread gets
/// it; when it comes while `fn` runs, the job still waits for `fn` to return (it may
/// reference the job's stack), then throws, dropping what `fn` returned or threw.
/// Source: marl's `blocking_call` (a thread per call there; a bounded pool here).
/// \param fn the blocking function (called once, by reference, on a pool thread).
/// \return what `fn` returned.
template <class F>
std::invoke_result_t<F&> blocking(F&& fn) {
  detail::throw_if_stopped("this_fiber::blocking(fn)");
  detail::BlockingCallOf<std::remove_reference_t<F>> call(fn);
  detail::run_blocking(call);
  detail::throw_if_stopped("this_fiber::blocking(fn)");  // a stop while fn ran
  return call.take();
}

}  // namespace this_fiber

}  // namespace fiberjob
