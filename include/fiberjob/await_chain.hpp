#pragma once
/// \file
/// Await chains: which `Task` awaits which, from a suspended or throwing coroutine up to its
/// job's root task, each as the coroutine's function and the code address of its `co_await`
/// (after Folly's async stack traces, folly/experimental/coro/AsyncStack.h).

#include <coroutine>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <string>
#include <type_traits>

#include "fiberjob/task.hpp"

namespace fiberjob {

/// One coroutine of an await chain.
struct AwaitFrame {
  /// The coroutine's resume function (g++ names it `f() [clone .actor]`, clang++ `f() (.resume)`):
  /// names the coroutine. nullptr when unknown.
  const void* function = nullptr;
  /// A return address inside `function`: just after the `co_await` where this coroutine is
  /// suspended on the next inner task of the chain (or, for the innermost frame of
  /// `current_await_chain`, on that call). `addr2line -i -e MODULE OFFSET-1` or gdb's
  /// `info line *(ADDR-1)` turn it into file:line. nullptr when unknown (the innermost frame of
  /// a chain captured from an exception or from a suspended job).
  const void* suspended_at = nullptr;
};

/// An await chain, innermost coroutine first, its job's root task (or the outermost task that
/// another task awaits) last. Fixed size: taking one never allocates.
struct AwaitChain {
  /// The most frames kept; deeper chains keep the innermost ones and set `truncated`.
  static constexpr std::size_t kMaxFrames = 32;
  /// The frames, innermost first; [0, size) are valid.
  AwaitFrame frames[kMaxFrames] = {};
  /// Number of valid frames (0: no chain, e.g. none was captured for an exception).
  std::size_t size = 0;
  /// True when the chain had more than kMaxFrames coroutines.
  bool truncated = false;
};

/// The chain as text, one line per frame, innermost first:
/// `  #N FUNCTION [at ADDRESS (MODULE+OFFSET)]`. FUNCTION is the demangled coroutine name from
/// the module's symbol table (".symtab"; "??" when stripped); the address is the `co_await`'s
/// return address, MODULE+OFFSET what addr2line takes (subtract 1 for the call's own line).
/// Thread-safety: any thread. Suspends: no. Allocates (the string, demangling); reads the
/// modules' files from disk. Errors: std::bad_alloc.
/// \param chain the chain to describe.
/// \return the text; "  (no await chain)\n" when `chain.size` is 0.
[[nodiscard]] std::string to_string(const AwaitChain& chain);

/// Writes `to_string(chain)` to `out` (then flushes it). Never throws: on allocation failure it
/// writes the raw addresses only. Thread-safety: any thread. Suspends: no.
/// \param out the stream to write to, e.g. stderr.
/// \param chain the chain to print.
void print_await_chain(std::FILE* out, const AwaitChain& chain) noexcept;

/// The await chain captured when `error` left a `Task`, if the job system of the job it
/// left had `Config::capture_await_chains` on: from the task where it escaped the coroutine
/// body (innermost) to the job's root task, as the chain stood then. The last 8 captured
/// exceptions are kept (process-wide), so ask soon, e.g. in the `catch` block that caught it.
/// Thread-safety: any thread. Suspends: no. Allocation: none.
/// \param error the exception, e.g. `std::current_exception()` in a catch block.
/// \return the chain; `size == 0` when none was captured for `error` (capture off, thrown
///   outside a Task, or overwritten by 8 later ones).
[[nodiscard]] AwaitChain await_chain_of(const std::exception_ptr& error) noexcept;

namespace detail {

/// Fills `chain` from `promise` up through the tasks that await it (awaited_by_); the first
/// frame is `promise`'s, with `suspended_at` as its address. On the thread that runs `promise`.
void fill_await_chain(AwaitChain& chain, const TaskPromiseBase& promise,
                      const void* suspended_at) noexcept;

/// The awaiter of current_await_chain: never suspends, fills the chain in await_suspend (out of
/// line, so its return address is the `co_await` in the calling coroutine).
class CurrentAwaitChainAwaiter {
 public:
  bool await_ready() const noexcept { return false; }
  template <class Promise>
  [[gnu::noinline]] bool await_suspend(std::coroutine_handle<Promise> self) noexcept {
    static_assert(std::is_base_of_v<TaskPromiseBase, Promise>,
                  "co_await fiberjob::current_await_chain() works in a fiberjob::Task coroutine "
                  "only: await it from a Task (or a job's root Task)");
    fill_await_chain(chain_, self.promise(), __builtin_return_address(0));
    if (chain_.size != 0 && chain_.frames[0].function == nullptr) {
      chain_.frames[0].function = resume_function(self);  // a task not yet awaited or bound
    }
    return false;  // resume at once
  }
  AwaitChain await_resume() const noexcept { return chain_; }

 private:
  AwaitChain chain_;
};

}  // namespace detail

/// The await chain of the calling coroutine: `AwaitChain chain = co_await
/// fiberjob::current_await_chain();` in a `Task` coroutine yields the chain from that
/// coroutine (frame 0, at this `co_await`) up through the tasks awaiting it to its job's root
/// task. Costs a walk of the chain, no allocation; the tasks keep their links anyway.
/// Suspends: no (the coroutine continues at once, on the same thread). Thread-safety: the
/// calling coroutine's own chain only. Errors: a compile error outside a `Task` coroutine.
/// \return the awaitable that yields the AwaitChain.
[[nodiscard]] inline detail::CurrentAwaitChainAwaiter current_await_chain() noexcept { return {}; }

}  // namespace fiberjob
