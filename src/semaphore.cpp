// Semaphore: the count in the wait queue's word (state = count << 1), waiters in its FIFO.
// Invariant: waiters are queued only while the count is zero.

#include "fiberjob/semaphore.hpp"

#include <string>

#include "fiberjob/error.hpp"
#include "stoppable_block.hpp"

namespace fiberjob {

using detail::WaitNode;

namespace {
std::uint32_t checked_count(std::int64_t initial) {
  if (initial < 0 || initial > Semaphore::kMax) {
    throw Error(ErrorCode::SyncMisuse, "fiberjob: Semaphore(" + std::to_string(initial) +
                                           "): the initial count must be in [0, Semaphore::kMax]");
  }
  return static_cast<std::uint32_t>(initial);
}
}  // namespace

Semaphore::Semaphore(std::int64_t initial) : queue_(checked_count(initial) << kShift) {}

Semaphore::~Semaphore() {
  const std::uint32_t state = queue_.lock();
  if (!queue_.empty()) {
    detail::die_with(
        "fiberjob: Semaphore destroyed while jobs, coroutines or threads still wait to acquire "
        "it; release enough permits for every waiter (or let them finish) before the semaphore "
        "goes out of scope.");
  }
  queue_.unlock(state);
}

bool Semaphore::try_acquire() noexcept {
  std::uint32_t state = queue_.state();
  while (state != 0) {  // a permit and an unlocked word (waiters imply a zero count)
    if (queue_.try_update(state, state - (1u << kShift))) return true;
    state = queue_.state();
  }
  return false;
}

void Semaphore::acquire() {
  if (try_acquire()) return;
  constexpr const char* kCall = "Semaphore::acquire";
  finish_acquire(detail::block_on_stoppable(this, {.link = &Semaphore::link_acquirer,
                                                   .unlink = &Semaphore::unlink_acquirer,
                                                   .what = "Semaphore",
                                                   .call = kCall}),
                 kCall);
}

void Semaphore::finish_acquire(detail::WaitEnd end, const char* call) {
  if (end == detail::WaitEnd::Completed) return;
  if (end == detail::WaitEnd::GiveBack) release(1);  // to the next waiter: never lost
  detail::throw_cancelled(call);
}

void Semaphore::release(std::int64_t n) {
  if (n < 1) {
    throw Error(ErrorCode::SyncMisuse, "fiberjob: Semaphore::release(" + std::to_string(n) +
                                           "): release at least one permit");
  }
  const std::uint32_t state = queue_.lock();
  std::int64_t count = state >> kShift;
  // Permits handed to waiters never enter the count: only the rest must fit under kMax.
  // Checked first: nothing is released then.
  if (n - queue_.size_up_to(n) > kMax - count) {
    queue_.unlock(state);
    throw Error(ErrorCode::SyncMisuse,
                "fiberjob: Semaphore::release(" + std::to_string(n) +
                    ") would raise the count past Semaphore::kMax; release only permits that "
                    "were acquired");
  }
  WaitNode* chain = nullptr;
  WaitNode* last = nullptr;
  while (n > 0 && !queue_.empty()) {  // FIFO hand-off: one permit per oldest waiter
    WaitNode* node = queue_.pop_front();
    (last != nullptr ? last->next : chain) = node;
    last = node;
    --n;
  }
  count += n;
  queue_.unlock(static_cast<std::uint32_t>(count) << kShift);  // last touch of the semaphore
  detail::wake_chain(chain);
}

std::int64_t Semaphore::available() const noexcept { return queue_.state() >> kShift; }

bool Semaphore::link_acquirer(void* object, WaitNode& node) noexcept {
  const detail::StoppableWait& wait = *static_cast<detail::StoppableWait*>(object);
  Semaphore& semaphore = *static_cast<Semaphore*>(wait.primitive);
  const std::uint32_t state = semaphore.queue_.lock();
  if (state != 0) {  // a permit came back since the failed fast path: take it
    semaphore.queue_.unlock(state - (1u << kShift));
    return false;
  }
  if (wait.wake() != nullptr && !wait.wake()->commit(node)) {  // the job's stop came first
    semaphore.queue_.unlock(state);
    return false;
  }
  semaphore.queue_.push_back(node);
  semaphore.queue_.unlock(0);
  return true;
}

bool Semaphore::unlink_acquirer(void* object, WaitNode& node) noexcept {
  return static_cast<Semaphore*>(static_cast<detail::StoppableWait*>(object)->primitive)
      ->queue_.withdraw(node);
}

}  // namespace fiberjob
