// Injector over moodycamel::ConcurrentQueue.

#include "injector.hpp"

// g++ 12 at -O3 reports a false -Wstringop-overflow inside moodycamel's inlined explicit-
// producer enqueue (it assumes the token's producer pointer may be null). The code is the
// library's, unchanged; the warning is silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif

#include "fiberjob/detail/die.hpp"

namespace fiberjob::detail {
namespace {

/// moodycamel returns false only when it cannot allocate a block: the job would be lost and
/// its counter would never reach zero, so stop with a message instead.
void require_enqueued(bool enqueued) noexcept {
  if (enqueued) return;
  die_with(
      "fiberjob: out of memory growing the injector queue, so a job could not be queued; free "
      "memory, or submit fewer jobs at once from outside the workers");
}

}  // namespace

void Injector::make_tokens(Tokens& tokens) {
  for (std::size_t p = 0; p < kPriorityCount; ++p) {
    tokens.producer[p].emplace(queues_[p]);
    tokens.consumer[p].emplace(queues_[p]);
  }
}

void Injector::push(Job job, Tokens* tokens) noexcept {
  const auto p = static_cast<std::size_t>(job.priority());
  // relaxed: see size_hint (ordered for parking by the caller's notify fence).
  sizes_[p].value.fetch_add(1, std::memory_order_relaxed);
  if (tokens != nullptr) {
    require_enqueued(queues_[p].enqueue(*tokens->producer[p], job.bits()));
  } else {
    require_enqueued(queues_[p].enqueue(job.bits()));
  }
}

void Injector::push_bulk(const std::uintptr_t* bits, std::size_t count, Priority priority,
                         Tokens* tokens) noexcept {
  const auto p = static_cast<std::size_t>(priority);
  // relaxed: see size_hint (ordered for parking by the caller's notify fence).
  sizes_[p].value.fetch_add(static_cast<std::int64_t>(count), std::memory_order_relaxed);
  if (tokens != nullptr) {
    require_enqueued(queues_[p].enqueue_bulk(*tokens->producer[p], bits, count));
  } else {
    require_enqueued(queues_[p].enqueue_bulk(bits, count));
  }
}

std::size_t Injector::pop_bulk(std::size_t priority, Tokens& tokens, std::uintptr_t* out,
                               std::size_t max) noexcept {
  if (size_hint(priority) == 0) return 0;  // one load: the common empty queue costs nothing
  const std::size_t got = queues_[priority].try_dequeue_bulk(*tokens.consumer[priority], out, max);
  if (got != 0) {
    // relaxed: see size_hint.
    sizes_[priority].value.fetch_sub(static_cast<std::int64_t>(got), std::memory_order_relaxed);
  }
  return got;
}

bool Injector::empty_approx() const noexcept {
  for (std::size_t p = 0; p < kPriorityCount; ++p) {
    if (size_hint(p) != 0) return false;
  }
  return true;
}

}  // namespace fiberjob::detail
