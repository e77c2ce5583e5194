#pragma once
// AffineInbox: the jobs only one attached thread may run (AttachedThread::spawn, co_await
// ctx.resume_on, and the resumptions of affine jobs that suspended), and the gate that closes it
// when the thread detaches without losing a job.

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstdint>

#include "fiberjob/counter.hpp"
#include "fiberjob/detail/cache_line.hpp"
#include "job.hpp"

namespace fiberjob::detail {

struct Worker;

/// A lock-free queue of Job::bits() with a size hint: an affine inbox's lane, and the queue of
/// resume_on_any hops that only worker threads take (Scheduler::push_to_worker_threads).
/// Producers: any threads. Consumers: any threads (an inbox has one, its slot's thread).
struct CountedQueue {
  /// Counts the job, then queues it. Returns false (and counts nothing) when the queue could
  /// not allocate. release (inside moodycamel): pairs with the dequeue's acquire in take, so
  /// what the job refers to (a record, a coroutine frame, a fiber's continuation) is visible
  /// to the thread that takes it.
  bool push(std::uintptr_t bits) noexcept {
    size.fetch_add(1, std::memory_order_relaxed);  // relaxed: see ::size
    bool queued = false;
    try {
      queued = queue.enqueue(bits);
    } catch (...) {
    }
    if (!queued) size.fetch_sub(1, std::memory_order_relaxed);  // relaxed: see ::size
    return queued;
  }
  /// The oldest job (FIFO per producer), or 0 when the queue is empty or a push counted itself
  /// but has not enqueued yet. One load when empty.
  std::uintptr_t take() noexcept {
    if (size.load(std::memory_order_relaxed) <= 0) return 0;  // relaxed: see ::size
    std::uintptr_t bits = 0;
    if (!queue.try_dequeue(bits)) return 0;
    size.fetch_sub(1, std::memory_order_relaxed);  // relaxed: see ::size
    return bits;
  }
  /// True when the queue may hold a job (see ::size). One load.
  [[nodiscard]] bool maybe_holds() const noexcept {
    return size.load(std::memory_order_relaxed) > 0;  // relaxed: see ::size
  }

  /// Lock-free MPMC; producers use moodycamel's implicit per-thread producers, so an enqueue
  /// allocates only the first time a thread pushes (and when a block fills up).
  moodycamel::ConcurrentQueue<std::uintptr_t> queue;
  /// Jobs in `queue`, never below the true number once the pushes and takes that happen-before
  /// a read are complete (a push counts itself before it enqueues, a take after it dequeued),
  /// so an empty look costs one load. relaxed everywhere: the parking protocol gets its order
  /// from EventCount's fences (a push counts itself before the pusher's notify fence; a parking
  /// thread reads it after its prepare_wait fence), as Injector::size_hint.
  alignas(kCacheLineBytes) std::atomic<std::int64_t> size{0};
};

/// One per attached-thread slot. Producers are any threads; the consumer is the slot's thread.
/// Two lanes, so that work already under way goes first, as a worker takes the fiber it woke
/// before new jobs (docs/decisions.md, "Woken affine work before new affine jobs"): a woken
/// pinned fiber waits behind no affine job that has not started, and the fibers an attached
/// thread holds stay bounded by the jobs it starts while earlier ones are suspended, not by
/// the length of its backlog.
struct AffineInbox {
  /// Resume (an affine plain job's pooled fiber, pinned, woken by wake_pinned) and
  /// ResumeCoroutine (a resume_on hop): taken first.
  CountedQueue woken;
  /// Run: affine jobs not yet started (AttachedThread::spawn), first in first out.
  CountedQueue fresh;
  /// The gate (src/affine.cpp; model: tests/model/affine_model.cpp). Bits 32-63: the
  /// attachment's generation, odd while a thread is attached (attach and detach each add
  /// 1 << 32); bits 0-31: pushers inside the gate (AffineEntry). A pusher adds 1, and queues
  /// only if it read its own generation; the detaching thread bumps the generation, then waits
  /// for the pushers inside to leave, so every job admitted is queued before it drains.
  alignas(kCacheLineBytes) std::atomic<std::uint64_t> gate{0};
  /// Affine jobs admitted and not finished: a Run job until it ends (it may suspend on this
  /// thread), a hop until its coroutine was resumed. The detaching thread waits for zero.
  Counter pending;
  /// Slot thread only: the Job::bits() that find_job last took from a lane and that has not
  /// been dispatched yet (0: none). A Run or ResumeCoroutine job travels through find_job and
  /// Fiber::pending like any other; this tells the dispatch loop it is affine (run pinned, count
  /// it done), and tells suspend() to give it back to the inbox, not to a stealable deque.
  std::uintptr_t taken = 0;
};

/// Opens `slot`'s inbox for a new attachment (Scheduler::attach) and returns its generation.
std::uint32_t open_affine(Worker& slot) noexcept;

/// On the detaching thread, on its own stack: closes the inbox (later pushes throw), waits for
/// the pushers inside the gate, then waits on the pending counter, which runs the affine jobs
/// left and waits for those suspended on this thread. Aborts with a message if that wait fails.
void close_affine(Worker& slot) noexcept;

/// AttachedWorker::run_pending on `slot` (see there).
std::size_t run_pending_affine(Worker& slot);

/// The generation bits of a gate word.
inline std::uint32_t gate_generation(std::uint64_t gate) noexcept {
  return static_cast<std::uint32_t>(gate >> 32);
}

/// Slot thread only: a job for `worker` (an attached slot) from its affine inbox's woken lane
/// (a woken pinned fiber or a resume_on hop), or an empty Job. Marks a ResumeCoroutine job as
/// taken (AffineInbox::taken).
Job take_woken_affine(Worker& worker) noexcept;
/// Slot thread only: a job for `worker` from its affine inbox's fresh lane (an affine job not
/// yet started), or an empty Job. Marks it as taken (AffineInbox::taken).
Job take_fresh_affine(Worker& worker) noexcept;

/// Slot thread only: true (and clears the mark) when `job` is the affine job that
/// take_woken_affine or take_fresh_affine handed out last. Inline: one compare on the dispatch of
/// every Run and ResumeCoroutine job of a slot.
inline bool claim_affine(AffineInbox* inbox, Job job) noexcept {
  if (inbox == nullptr || inbox->taken != job.bits()) return false;
  inbox->taken = 0;
  return true;
}

/// Slot thread only: puts `job` back into the inbox when it is the affine job taken last (a suspend
/// found no fiber to run it on). Returns false for any other job.
bool give_back_affine(Worker& worker, Job job) noexcept;

/// Queues `job` in `slot`'s inbox (a Run job in the fresh lane, a Resume or ResumeCoroutine in
/// the woken lane) and wakes the parked workers (the slot's thread may be parked
/// among them). Aborts with a message if the queue cannot allocate (the job would be lost).
void push_affine(Worker& slot, Job job) noexcept;

/// An affine job's part of this thread is over (a Run job ended, a hop's coroutine ran):
/// signals the inbox's pending counter.
void finish_affine(Worker& slot) noexcept;

}  // namespace fiberjob::detail
