#pragma once
/// \file
/// The intrusive node a waiter links into a counter's wait list. Internal: users never touch it.

#include <atomic>
#include <cstdint>
#include <stop_token>

namespace fiberjob::detail {

struct Fiber;
class Scheduler;

/// One waiter on a `Counter`: lives where the waiter already lives, so waiting never allocates —
/// in the `Fiber` (stackful wait), in an awaiter inside a coroutine frame (stackless wait), in an
/// asynchronous operation (callback), or on the stack of a plain thread blocked in
/// `JobSystem::wait`.
///
/// Ownership: from the successful link until the drain that takes it, the node belongs to the
/// counter's wait list; the drainer reads `next` before it makes the waiter runnable, because a
/// resumed waiter may reuse or destroy its node at once. 16-byte aligned: a coroutine node also
/// travels through the queues as the payload of `Job::ResumeCoroutine` (tagged pointer).
struct alignas(16) WaitNode {
  /// How the drainer makes the waiter runnable again.
  enum class Kind : std::uint8_t {
    Fiber,      ///< Push `Job::Resume(fiber)` onto a worker's queue.
    Thread,     ///< Set `woken` and wake the futex on it.
    Coroutine,  ///< Push `Job::ResumeCoroutine(node)`: `coroutine_address` resumes on a worker.
    Callback,   ///< Call `callback(node)` on the thread that makes the waiter runnable (the
                ///< signaller, or the worker running the chain of a long list; must be short
                ///< and non-blocking).
    Stoppable,  ///< A counter wait of a job with a stop token: this node lives in the wait's
                ///< pooled StopBlock (`callback_context`), not in the waiter. The drainer
                ///< claims it (take_stoppable) and wakes the waiter's own node, or skips it: a
                ///< tombstone, whose waiter the stop already woke. `priority` and `scheduler`
                ///< are the waiter's (where a chain it heads goes).
  };

  /// Next node in the wait list (Treiber stack). Written by the linker before its publishing
  /// CAS; read by the drainer after its acquiring exchange, so a plain pointer is race-free.
  WaitNode* next = nullptr;
  /// Members of one kind each, sharing their bytes (a node in a coroutine frame stays 64 bytes).
  union {
    /// Kind::Thread: 0 while waiting, 1 once woken. The waker's release store pairs with the
    /// waiting thread's acquire load in its futex loop; it is the waker's last touch of the
    /// node.
    std::atomic<std::uint32_t> woken{0};
    /// Kind::Coroutine, in a worker's combined waits (defer_link): the next node of the same
    /// combined link. Not `next`, which the drainer may rewrite once the nodes are published (a
    /// wake chain cuts its chunks there) while the linker still walks its nodes to clear each
    /// one's `linking`. Written (defer_link) before it is read, only by the linker, before it
    /// clears `linking`.
    WaitNode* chunk_next;
  };
  Kind kind = Kind::Fiber;
  /// Kind::Coroutine: the `Priority` (as its integer value) the coroutine resumes at.
  std::uint8_t priority = 1;
  /// Kind::Coroutine: the coroutine is its job's innermost task (note_task_wait): the job's
  /// root (`job_locals`) lives until the coroutine has resumed, so the resume may read its
  /// name and clear its wait record. Written before the link, read by the resumer.
  bool job_task = false;
  /// 1 when the drain that woke this node saw the counter keep an exception: only then does
  /// the woken waiter read the counter again (to rethrow it). A wait woken with 0 never touches
  /// the counter after its wake, so the counter may be destroyed as soon as the last signal
  /// returned. Written by the drainer (CounterWaitList::note_error_kept) only when an
  /// exception is kept, before the waiter is made runnable (ordered by the wake, as `next`);
  /// read by the waiter once resumed. 0 in an idle node: a waiter that reads 1 from a node it
  /// reuses (Fiber::node) clears it (CounterWaitList::take_error_kept), so the usual wake
  /// writes nothing here.
  std::uint8_t error_kept = 0;
  /// 1 while the linker may still touch the counter after publishing this node (its re-check
  /// and possible drain). A woken waiter spins until it reads 0 (acquire, pairing with the
  /// linker's release store) before it returns, so the counter is never destroyed under the
  /// linker's feet: for a fiber wait the linker is another fiber that may be preempted.
  std::atomic<std::uint32_t> linking{0};
  union {
    /// Kind::Fiber: the suspended fiber to resume.
    Fiber* fiber = nullptr;
    /// Kind::Coroutine: the stop token of the coroutine's job (nullptr: spawned without one),
    /// restored on the fiber that resumes it, as `job_counter`.
    const std::stop_token* job_stop;
  };
  /// What identifies the waiter besides `fiber`; which member is set depends on `kind`, and
  /// only that member is ever read.
  union {
    /// Kind::Coroutine: the suspended coroutine's address (std::coroutine_handle<>::address()).
    void* coroutine_address = nullptr;
    /// Kind::Callback: the callback's own context (e.g. the asynchronous operation).
    /// Kind::Stoppable: the StopBlock the node lives in.
    void* callback_context;
    /// Kind::Thread: who waits, for ownership (waiter_token): the fiber the waiting job runs
    /// on, or the waiting thread's token.
    const void* thread_token;
  };
  /// Kind::Coroutine: the job system to resume it on; nullptr = the waking worker's system, or,
  /// when the waker is not a worker, inline on the waking thread.
  Scheduler* scheduler = nullptr;
  /// Kind::Coroutine: the counter that the coroutine's job signals when it ends (nullptr when
  /// not known), restored on the fiber that resumes it so a later wait on it is still rejected.
  const void* job_counter = nullptr;
  union {
    /// Kind::Coroutine: where the coroutine's job keeps its JobLocal values (a
    /// JobLocalEntry**; nullptr when not known), restored on the fiber that resumes it.
    void* job_locals = nullptr;
    /// Kind::Callback: called with the node once the counter reached zero (set by the caller
    /// of link_callback before the link).
    void (*callback)(WaitNode& node) noexcept;
  };
};
static_assert(sizeof(WaitNode) == 64, "a wait node (in every awaiter) is 64 bytes");

}  // namespace fiberjob::detail
