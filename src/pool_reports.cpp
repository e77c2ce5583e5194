// The fiber pool's reports: the one-time notice when the pool grows past its warm fibers, and
// the Error (and one-time stderr line) when it cannot give a fiber.

#include <unistd.h>

#include <cstring>
#include <string>

#include "fiber_switch.hpp"
#include "fiberjob/error.hpp"
#include "scheduler.hpp"

namespace fiberjob::detail {

namespace {

/// Writes `message` to stderr with one write(2). For reports made on a waiting job's fiber:
/// stdio's unbuffered stderr formats through an 8 KiB buffer on the stack, which a fiber that
/// is already half full (small stacks, inline children) may not have.
void write_to_stderr(const std::string& message) noexcept {
  std::size_t done = 0;
  while (done < message.size()) {
    const ssize_t n = ::write(STDERR_FILENO, message.data() + done, message.size() - done);
    if (n <= 0) return;  // nothing to do about a failing stderr
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

void Scheduler::report_pool_grown(Worker& worker) noexcept {
  WorkerStats::bump(worker.stats.pool_exhausted);
  // relaxed: only elects the one reporter.
  if (growth_reported_.exchange(true, std::memory_order_relaxed)) return;
  try {  // the string lives on the heap: little stack (see write_to_stderr)
    write_to_stderr(
        "fiberjob: more than Config::fiber_count = " + std::to_string(fibers_.warm_count()) +
        " fibers are in use at once (each worker runs on one; each plain job suspended in a "
        "wait, a yield, a sleep (this_fiber::sleep_for, sleep_until) or a timed wait (wait_for, "
        "wait_until) holds one, and so does each coroutine whose scope is left, by an "
        "exception, while a Counter or JobHandle of it still has pending jobs: ~Counter joins "
        "them on a fiber). The pool grows on demand up to "
        "Config::max_fiber_count = " +
        std::to_string(fibers_.max_count()) +
        ", and fibers past fiber_count give their stack pages back each time they return to "
        "the pool (slower than warm ones). Raise Config::fiber_count to keep them warm; "
        "Stats::pool_exhausted counts these events.\n");
  } catch (...) {  // no memory for the message: the statistic still counts it
  }
}

void throw_pool_exhausted(Scheduler& scheduler) {
  const FiberPool& pool = scheduler.fibers();
  const std::uint32_t created = pool.created();
  std::string message;
  if (created < pool.max_count() && pool.growth_error() != 0) {
    message = "fiberjob: the fiber pool could not grow past " + std::to_string(created) +
              " fibers: the OS refused the memory for more stacks (" +
              std::strerror(pool.growth_error()) +
              "). Each fiber needs Config::fiber_stack_size bytes of address space and two "
              "memory mappings (the OS limit vm.max_map_count); lower Config::max_fiber_count "
              "or Config::fiber_stack_size, raise vm.max_map_count, or write the waiting jobs "
              "as coroutines (co_await holds no fiber)";
  } else {
    message = "fiberjob: fiber pool exhausted: all " + std::to_string(pool.max_count()) +
              " fibers (Config::max_fiber_count) are in use by running jobs, by plain jobs "
              "suspended in a wait, a yield, a sleep (this_fiber::sleep_for, sleep_until) or a "
              "timed wait (wait_for, wait_until), and by joins of a Counter or "
              "JobHandle destroyed while its jobs were pending (also in coroutine jobs: a "
              "scope left by an exception joins on a fiber), and this one needs another. "
              "Raise Config::max_fiber_count, or write the jobs that wait or sleep as coroutines "
              "(a co_await, ctx.sleep_for included, holds no fiber)";
  }
  // Also on stderr, once: a job that lets the error unwind past a counter whose children are
  // still pending ends in that counter's abort, and the cause must be on record before it.
  scheduler.report_exhausted_once(message);
  throw Error(ErrorCode::FiberPoolExhausted, message);
}

void throw_class_exhausted(Scheduler& scheduler, const FiberPool& pool) {
  const std::string field =
      "Config::stack_classes[" + std::to_string(pool.stack_class() - 1) + "].max_fiber_count";
  const std::string message =
      std::string("fiberjob: stack class '") + pool.class_name() +
      "' exhausted: a plain job on one of its fibers must suspend (a wait, a sleep or a "
      "timed wait), and would hold the last of the class's " +
      field + " = " + std::to_string(pool.max_count()) +
      " fibers meanwhile; no job of the class could start until it resumes (if it waited for "
      "one, such as its own child, that would be a deadlock; a sleep is refused the same way, "
      "though its timer would wake it). Raise " +
      field +
      " above the number of the class's plain jobs that wait or sleep at once, or write the "
      "waiting job as a coroutine (co_await holds no fiber)";
  scheduler.report_exhausted_once(message);
  throw Error(ErrorCode::FiberPoolExhausted, message);
}

void Scheduler::report_exhausted_once(const std::string& message) noexcept {
  // relaxed: only elects the one reporter.
  if (exhaustion_reported_.exchange(true, std::memory_order_relaxed)) return;
  try {
    write_to_stderr(message +
                    " (thrown as Error(FiberPoolExhausted) from a wait, yield, sleep or timed "
                    "wait; a join in a "
                    "destructor cannot throw, and aborts with its own message next).\n");
  } catch (...) {  // no memory for the message: the Error still carries it
  }
}

}  // namespace fiberjob::detail
