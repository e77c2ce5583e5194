// Injector over moodycamel::ConcurrentQueue.

#include "injector.hpp"

// g++ 12 at -O3 reports a false -Wstringop-overflow inside moodycamel's inlined explicit-
// producer enqueue (it assumes the token's producer pointer may be null). The code is the
// library's, unchanged; the warning is silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif

#include <cstdio>
#include <cstdlib>

namespace fiberjob::detail {
namespace {

/// moodycamel returns false only when it cannot allocate a block: the job would be lost and
/// its counter would never reach zero, so stop with a message instead.
void require_enqueued(bool enqueued) noexcept {
  if (enqueued) return;
  std::fputs("fiberjob: out of memory growing the injector queue; a job could not be queued\n",
             stderr);
  std::abort();
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
  if (tokens != nullptr) {
    require_enqueued(queues_[p].enqueue(*tokens->producer[p], job.bits()));
  } else {
    require_enqueued(queues_[p].enqueue(job.bits()));
  }
}

void Injector::push_bulk(const Job* jobs, std::size_t count, Priority priority,
                         Tokens* tokens) noexcept {
  static_assert(sizeof(Job) == sizeof(std::uintptr_t));
  const auto p = static_cast<std::size_t>(priority);
  const auto* bits = reinterpret_cast<const std::uintptr_t*>(jobs);
  if (tokens != nullptr) {
    require_enqueued(queues_[p].enqueue_bulk(*tokens->producer[p], bits, count));
  } else {
    require_enqueued(queues_[p].enqueue_bulk(bits, count));
  }
}

Job Injector::pop(std::size_t priority, Tokens& tokens) noexcept {
  // size_approx first: a cheap miss on the common empty queue.
  if (queues_[priority].size_approx() == 0) return {};
  std::uintptr_t bits = 0;
  if (queues_[priority].try_dequeue(*tokens.consumer[priority], bits)) {
    return Job::from_bits(bits);
  }
  return {};
}

bool Injector::empty_approx() const noexcept {
  for (const Queue& queue : queues_) {
    if (queue.size_approx() != 0) return false;
  }
  return true;
}

}  // namespace fiberjob::detail
