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
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <exception>
#include <memory>
#include <type_traits>
#include <utility>

#include "fiberjob/counter.hpp"
#include "fiberjob/detail/external_wait.hpp"

namespace fiberjob::asio {

namespace detail {

/// One pending async_wait: the wait node, the handler and a work guard that keeps the handler's
/// executor (e.g. an io_context) from running out of work while the counter is pending.
template <class Handler>
class WaitOperation {
 public:
  WaitOperation(Handler handler, Counter& counter)
      : handler_(std::move(handler)),
        work_(::asio::make_work_guard(::asio::get_associated_executor(handler_))),
        counter_(counter) {}

  /// Links into the counter's wait list, or completes at once when it is already zero.
  /// Consumes `self` either way.
  static void start(std::unique_ptr<WaitOperation> self) {
    WaitOperation* op = self.get();
    op->node_.callback = &WaitOperation::on_zero;
    op->node_.coroutine = op;
    if (fiberjob::detail::link_callback(op->counter_, op->node_)) {
      self.release();  // owned by the wait list until on_zero
    } else {
      op->complete();  // already zero: complete through the executor, never inline
      // `self` deletes the operation here; the posted handler owns a moved copy.
    }
  }

 private:
  /// Runs on the thread whose signal brought the counter to zero: short and non-blocking.
  static void on_zero(fiberjob::detail::WaitNode& node) noexcept {
    std::unique_ptr<WaitOperation> self(static_cast<WaitOperation*>(node.coroutine));
    fiberjob::detail::wait_for_linker(node);
    self->complete();
  }

  void complete() {
    std::exception_ptr error = fiberjob::detail::take_exception(counter_);
    auto executor = work_.get_executor();
    ::asio::post(executor, [handler = std::move(handler_), error = std::move(error)]() mutable {
      std::move(handler)(error);
    });
    work_.reset();
  }

  Handler handler_;
  ::asio::executor_work_guard<::asio::associated_executor_t<Handler>> work_;
  Counter& counter_;
  fiberjob::detail::WaitNode node_;
};

}  // namespace detail

/// Starts an asynchronous wait for `counter` to reach zero; completes with
/// `void(std::exception_ptr)` — the first exception a job on the counter threw, or nullptr
/// (`asio::use_awaitable` turns a non-null one into a throw at the `co_await`).
/// The handler runs on its associated executor (posted, never inline in a signaller), and that
/// executor counts as having outstanding work until then.
/// Thread-safety: any thread. Allocation: one operation object per wait (plus whatever the
/// completion token allocates). Lifetime: `counter` must outlive the wait.
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
