#pragma once
// Injector: the shared FIFO queues (one per priority) for jobs from plain threads, yielded
// fibers and batch wakes, on moodycamel::ConcurrentQueue (lock-free, MPMC). FIFO holds per
// producer only: two threads' submissions may interleave in any order, and a yielded fiber
// is behind everything its own worker queued before it, not behind other workers' work.

#include <concurrentqueue/concurrentqueue.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "fiberjob/config.hpp"
#include "fiberjob/detail/cache_line.hpp"
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
  void push_bulk(const std::uintptr_t* jobs, std::size_t count, Priority priority,
                 Tokens* tokens) noexcept;
  /// Takes up to `max` of the oldest jobs of `priority` into `out` (their Job::bits()), FIFO
  /// per producer; returns how many. May miss jobs transiently while another consumer's attempt
  /// is in progress (moodycamel's optimistic dequeue); empty_approx() does not. Costs one load
  /// when the queue is empty.
  std::size_t pop_bulk(std::size_t priority, Tokens& tokens, std::uintptr_t* out,
                       std::size_t max) noexcept;
  /// Roughly how many jobs of `priority` are queued: never below the true number once the
  /// pushes and pops that happen-before the call are complete (a push counts itself before it
  /// enqueues, a pop after it dequeued), so 0 means empty. One load.
  [[nodiscard]] std::size_t size_hint(std::size_t priority) const noexcept {
    // relaxed: a hint for the fast path. The parking protocol gets its order from the fences of
    // EventCount (a push counts itself before the pusher's notify fence; a parking worker reads
    // this after its prepare_wait fence).
    const std::int64_t n = sizes_[priority].value.load(std::memory_order_relaxed);
    return n > 0 ? static_cast<std::size_t>(n) : 0;
  }

  /// True when no priority holds a job: every size_hint is 0 (never misses a job whose push
  /// happens-before the call; may say "not empty" while a pop is completing).
  bool empty_approx() const noexcept;

 private:
  using Queue = moodycamel::ConcurrentQueue<std::uintptr_t>;
  struct alignas(kCacheLineBytes) Size {
    /// Jobs of one priority: + before each enqueue, - after each dequeue, by any thread. All
    /// relaxed, pairs with nothing: a hint; parking orders it by the event count's fences.
    std::atomic<std::int64_t> value{0};
  };
  Queue queues_[kPriorityCount];
  Size sizes_[kPriorityCount];  // size_hint: + before each enqueue, - after each dequeue
};

}  // namespace fiberjob::detail
