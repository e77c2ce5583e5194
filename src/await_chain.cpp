// Await chains (fiberjob/await_chain.hpp): walking a task's links up to its job's root,
// capturing the chain of an exception that leaves a task, and printing chains. The downward walk
// of write_diagnostics is in coroutine_registry.cpp; both share the walker lock below.

#include "fiberjob/await_chain.hpp"

#include <atomic>
#include <cinttypes>
#include <coroutine>
#include <cstdio>
#include <mutex>

#include "await_chain_access.hpp"
#include "platform/futex.hpp"
#include "scheduler.hpp"
#include "symbolize.hpp"

namespace fiberjob {
namespace detail {

std::atomic<int> g_capturing_systems{0};

namespace {

/// The walker lock: 1 while write_diagnostics walks await chains (reads other threads'
/// promises), 0 otherwise. The walkers' acquire exchange and release store pair with each
/// other and with the acq_rel fetch_or of a task that waits for walkers before its frame goes.
std::atomic<int> g_chain_walker{0};

/// Exceptions whose chain was captured, newest at `next - 1` (a ring), under `mutex`.
struct CapturedChains {
  static constexpr std::size_t kKept = 8;
  std::mutex mutex;
  std::exception_ptr errors[kKept];
  AwaitChain chains[kKept];
  std::size_t next = 0;
};

CapturedChains& captured() {
  static CapturedChains chains;
  return chains;
}

/// Whether the job system of `promise`'s chain wants chains of exceptions captured.
bool capture_wanted(const TaskPromiseBase& promise) noexcept {
  const TaskPromiseBase* top = &promise;
  while (AwaitChainAccess::awaited_by(*top) != nullptr) top = AwaitChainAccess::awaited_by(*top);
  const Scheduler* scheduler = AwaitChainAccess::scheduler(*top);
  // A task awaited by no Task of a job (e.g. by sync_wait): some live job system wants them.
  return scheduler == nullptr || scheduler->config().capture_await_chains;
}

}  // namespace

void lock_await_chain_walkers() noexcept {
  // acquire: pairs with the release half of the fetch_or in wait_for_await_chain_walkers (and
  // with the previous walker's unlock): a task unlinked from its parent before that is seen so.
  while (g_chain_walker.exchange(1, std::memory_order_acquire) != 0) {
    while (g_chain_walker.load(std::memory_order_relaxed) != 0) cpu_relax();  // relaxed: a hint
  }
}

void unlock_await_chain_walkers() noexcept {
  // release: pairs with the acquire half of the fetch_or in wait_for_await_chain_walkers: this
  // walker's reads of a task happen before its frame is freed.
  g_chain_walker.store(0, std::memory_order_release);
}

void wait_for_await_chain_walkers() noexcept {
  // acq_rel: see lock/unlock above. Reading 0 in an RMW orders this task's unlinking (before
  // it, on this thread) before any later walker's lock; reading 1 waits for that walker.
  while (g_chain_walker.fetch_or(0, std::memory_order_acq_rel) != 0) {
    while (g_chain_walker.load(std::memory_order_relaxed) != 0) cpu_relax();  // relaxed: a hint
  }
}

void fill_await_chain(AwaitChain& chain, const TaskPromiseBase& promise,
                      const void* suspended_at) noexcept {
  chain = AwaitChain{};
  const TaskPromiseBase* task = &promise;
  const void* at = suspended_at;
  while (task != nullptr) {
    if (chain.size == AwaitChain::kMaxFrames) {
      chain.truncated = true;
      break;
    }
    chain.frames[chain.size++] = AwaitFrame{AwaitChainAccess::code(*task), at};
    at = AwaitChainAccess::awaited_at(*task);
    task = AwaitChainAccess::awaited_by(*task);
  }
}

void note_inner_task_wait(WaitNode& node, JobRoot& root, const void* object,
                          const char* what) noexcept {
  // The job's innermost task: the one that suspends, unless a foreign coroutine does.
  TaskPromiseBase* task = root.task;
  while (const TaskPromiseBase* inner = AwaitChainAccess::awaiting(*task)) {
    task = const_cast<TaskPromiseBase*>(inner);
  }
  if (std::coroutine_handle<TaskPromiseBase>::from_promise(*task).address() ==
      node.coroutine_address) {
    record_task_wait(node, root, object, what);
  }
}

void capture_exception_await_chain(const TaskPromiseBase& promise,
                                   const std::exception_ptr& error) noexcept {
  if (!capture_wanted(promise)) return;
  CapturedChains& ring = captured();
  std::lock_guard lock(ring.mutex);
  for (const std::exception_ptr& kept : ring.errors) {
    if (kept == error) return;  // rethrown from an inner task: keep the deeper chain
  }
  const std::size_t slot = ring.next++ % CapturedChains::kKept;
  ring.errors[slot] = error;  // the exception it replaces may be destroyed here
  fill_await_chain(ring.chains[slot], promise, nullptr);
}

}  // namespace detail

AwaitChain await_chain_of(const std::exception_ptr& error) noexcept {
  if (!error) return {};
  detail::CapturedChains& ring = detail::captured();
  std::lock_guard lock(ring.mutex);
  for (std::size_t i = 0; i < detail::CapturedChains::kKept; ++i) {
    if (ring.errors[i] == error) return ring.chains[i];
  }
  return {};
}

std::string to_string(const AwaitChain& chain) {
  if (chain.size == 0) return "  (no await chain)\n";
  std::string text;
  char line[64];
  for (std::size_t i = 0; i < chain.size; ++i) {
    const AwaitFrame& frame = chain.frames[i];
    std::snprintf(line, sizeof line, "  #%zu ", i);
    text += line;
    text += frame.function != nullptr ? detail::symbolize(frame.function).function : "??";
    if (frame.suspended_at != nullptr) {
      const detail::CodeSymbol where = detail::symbolize(frame.suspended_at);
      std::snprintf(line, sizeof line, " at %p (", frame.suspended_at);
      text += line;
      text += where.module;
      std::snprintf(line, sizeof line, "+0x%" PRIxPTR ")", where.offset);
      text += line;
    }
    text += '\n';
  }
  if (chain.truncated) text += "  (more outer tasks: the chain is longer than kMaxFrames)\n";
  return text;
}

void print_await_chain(std::FILE* out, const AwaitChain& chain) noexcept {
  try {
    std::fputs(to_string(chain).c_str(), out);
  } catch (...) {  // std::bad_alloc: the addresses alone
    for (std::size_t i = 0; i < chain.size; ++i) {
      std::fprintf(out, "  #%zu %p at %p\n", i, chain.frames[i].function,
                   chain.frames[i].suspended_at);
    }
  }
  std::fflush(out);
}

}  // namespace fiberjob
