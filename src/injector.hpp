#pragma once
// Injector: the shared FIFO queues (one per priority) for jobs from plain threads, yielded
// fibers and batch wakes, on moodycamel::ConcurrentQueue (lock-free, MPMC). FIFO holds per
// producer only: two threads' submissions may interleave in any order, and a yielded fiber
// is behind everything its own worker queued before it, not behind other workers' work.

#include <concurrentqueue/concurrentqueue.h>

#include <cstddef>
#include <cstdint>
#include <optional>

#include "fiberjob/config.hpp"
#include "job.hpp"

namespace fiberjob::detail {

class Injector {
 public:
  /// One worker's tokens: faster enqueue/dequeue, and FIFO among that worker's own pushes.
  /// Used only by the worker's own thread.
  struct Tokens {
    std::optional<moodycamel::ProducerToken> producer[kPriorityCount];
    std::optional<moodycamel::ConsumerToken> consumer[kPriorityCount];
  };

  Injector() = default;
  Injector(const Injector&) = delete;
  Injector& operator=(const Injector&) = delete;

  /// Creates `tokens` for this injector (allocates; at worker construction).
  void make_tokens(Tokens& tokens);

  /// Queues `job` at its priority. `tokens` is the calling worker's, or nullptr on a plain
  /// thread (moodycamel then uses an implicit per-thread producer, allocated on first use).
  /// Aborts with a message if the queue cannot allocate (the job would be lost).
  void push(Job job, Tokens* tokens) noexcept;
  /// Queues `count` jobs of one priority in one bulk enqueue. Aborts like push.
  void push_bulk(const Job* jobs, std::size_t count, Priority priority, Tokens* tokens) noexcept;
  /// Takes the oldest job of `priority` (FIFO per producer), or an empty Job. May miss a job
  /// transiently while another consumer's attempt is in progress (moodycamel's optimistic
  /// dequeue); empty_approx() does not.
  Job pop(std::size_t priority, Tokens& tokens) noexcept;

  /// True when no priority holds a job (moodycamel size_approx: exact once enqueues and
  /// dequeues that happen-before the call are complete).
  bool empty_approx() const noexcept;

 private:
  using Queue = moodycamel::ConcurrentQueue<std::uintptr_t>;
  Queue queues_[kPriorityCount];
};

}  // namespace fiberjob::detail
