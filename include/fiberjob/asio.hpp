#pragma once
/// \file
/// fiberjob::asio — standalone Asio interop (optional part, target `fiberjob::asio`).
///
/// * Asio code waits on a fiberjob counter as an Asio asynchronous operation, with any
///   completion token: `co_await fiberjob::asio::async_wait(counter, asio::use_awaitable)` in an
///   `asio::awaitable<>` coroutine, a plain callback, `asio::use_future`, ...
/// * Jobs hand results back to Asio with `asio::post(executor, ...)` (Asio executors are
///   thread-safe), so nothing more is needed in that direction.

#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/basic_waitable_timer.hpp>
#include <asio/error_code.hpp>
#include <atomic>
#include <chrono>
#include <exception>
#include <memory>
#include <thread>
#include <type_traits>
#include <utility>

#include "fiberjob/counter.hpp"
#include "fiberjob/detail/external_wait.hpp"

namespace fiberjob::asio {

namespace detail {

/// One pending async_wait: the wait node, the handler, and the vehicle of the completion — a
/// timer on the handler's executor that never expires, whose wait is started with the
/// operation. Asio allocates everything that wait's completion needs when it starts; the wake
/// (in the signaller's noexcept callback) only cancels it, which allocates nothing, so an
/// allocation failure can only happen at the start, where async_wait throws it. The pending
/// timer wait also keeps the executor's context (e.g. an io_context) from running out of work.
template <class Handler>
class WaitOperation {
  using Executor = ::asio::associated_executor_t<Handler>;
  using Clock = std::chrono::steady_clock;
  using Timer = ::asio::basic_waitable_timer<Clock, ::asio::wait_traits<Clock>, Executor>;

 public:
  WaitOperation(Handler handler, Counter& counter)
      : handler_(std::move(handler)),
        timer_(::asio::get_associated_executor(handler_), Clock::time_point::max()),
        counter_(counter) {}

  /// Starts the timer wait, then links into the counter's wait list, or wakes at once when it
  /// is already zero (the handler still runs through the executor, never inline).
  /// Consumes `self` either way. Errors: what Asio throws when starting the timer wait
  /// (std::bad_alloc); nothing is linked then.
  static void start(std::unique_ptr<WaitOperation> self) {
    WaitOperation* op = self.get();
    op->timer_.async_wait(Fire{op});
    // From here the operation belongs to the timer wait, which deletes it in fire() once the
    // wake is over.
    self.release();
    op->node_.callback = &WaitOperation::on_zero;
    op->node_.callback_context = op;
    // Not linked: the count is zero and our own call keeps the counter alive.
    if (!fiberjob::detail::link_callback(op->counter_, op->node_)) op->wake(true);
  }

 private:
  /// The timer wait's handler: runs on the handler's executor once wake() cancelled it.
  struct Fire {
    WaitOperation* op;
    void operator()(const ::asio::error_code&) { op->fire(); }
  };

  /// Runs on the thread whose signal brought the counter to zero: short, non-blocking, no
  /// allocation.
  static void on_zero(fiberjob::detail::WaitNode& node) noexcept {
    auto* op = static_cast<WaitOperation*>(node.callback_context);
    fiberjob::detail::wait_for_linker(node);
    // The counter may be gone already (its last signal returned): read it only when the drain
    // said it keeps an exception.
    op->wake(node.error_kept != 0);
  }

  /// The counter reached zero: keep its exception (`check_error`: the counter may keep one and
  /// is alive; else it is not read), complete the timer wait. Allocates nothing: cancelling
  /// queues the wait's operation, which Asio allocated when it started.
  void wake(bool check_error) noexcept {
    if (check_error) error_ = fiberjob::detail::take_exception(counter_);
    try {
      timer_.cancel();
    } catch (...) {  // Asio's cancel of a pending wait reports no error; nothing to do
    }
    // release: pairs with the acquire load in fire(): the exception and the cancel happen
    // before fire() destroys the operation. Our last touch of it.
    woken_.store(true, std::memory_order_release);
  }

  /// The completion, on the handler's executor. The only way the timer wait completes is
  /// wake()'s cancel, so wait the moment until wake() has made its last touch: then this thread
  /// destroys the operation and its timer, while the handler's execution context surely lives
  /// (the waking worker doing it could find the context already destroyed once the handler ran).
  void fire() {
    // acquire: pairs with the release store at the end of wake().
    while (!woken_.load(std::memory_order_acquire)) std::this_thread::yield();
    Handler handler = std::move(handler_);
    std::exception_ptr error = std::move(error_);  // written by wake(), before its cancel
    delete this;
    std::move(handler)(error);
  }

  Handler handler_;
  Timer timer_;
  Counter& counter_;
  std::exception_ptr error_;
  /// Set by wake() after its last touch of the operation; fire() then owns it alone. Its
  /// release store in wake() pairs with the acquire load in fire().
  std::atomic<bool> woken_{false};
  fiberjob::detail::WaitNode node_;
};

}  // namespace detail

/// Starts an asynchronous wait for `counter` to reach zero; completes with
/// `void(std::exception_ptr)` — the first exception a job on the counter threw, or nullptr
/// (`asio::use_awaitable` turns a non-null one into a throw at the `co_await`).
/// The handler runs on its associated executor (never inline in a signaller), and that
/// executor's context counts as having outstanding work until then.
/// Thread-safety: any thread. Allocation: only when the wait starts — one operation object and
/// Asio's pending wait of a timer on the handler's executor (plus whatever the completion token
/// allocates); the signal that completes the wait allocates nothing (it cancels that timer
/// wait), so it cannot fail. Errors: std::bad_alloc from the start, nothing linked then.
/// Lifetime: `counter` and the executor's execution context must outlive the wait.
/// \param counter the counter to wait for.
/// \param token an Asio completion token (`asio::use_awaitable`, a handler, `asio::deferred`…).
/// \return what the completion token makes of `void(std::exception_ptr)`, e.g. an
///   `asio::awaitable<std::exception_ptr>` for `use_awaitable` (rethrown at the `co_await`).
template <class CompletionToken>
auto async_wait(Counter& counter, CompletionToken&& token) {
  return ::asio::async_initiate<CompletionToken, void(std::exception_ptr)>(
      [&counter](auto handler) {
        using Operation = detail::WaitOperation<std::decay_t<decltype(handler)>>;
        Operation::start(std::make_unique<Operation>(std::move(handler), counter));
      },
      token);
}

}  // namespace fiberjob::asio
