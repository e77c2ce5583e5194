// Mutex: FIFO hand-off over the wait queue (wait_queue.cpp). State bits of the queue word:
// kHeld (owned) and kWaiters (someone is queued). Free <-> held by lock-free CAS when nobody
// waits; with waiters, unlock hands ownership to the oldest one under the queue's lock.

#include "fiberjob/mutex.hpp"

#include <coroutine>
#include <string>

#include "fiberjob/error.hpp"
#include "stoppable_block.hpp"

namespace fiberjob {

using detail::WaitNode;

namespace {
[[noreturn]] void throw_recursive(const char* what) {
  throw Error(ErrorCode::SyncMisuse,
              std::string("fiberjob: ") + what +
                  " of a Mutex that the caller owns already: it would wait for itself forever "
                  "(fiberjob::Mutex is not recursive). Unlock it first, or restructure so the "
                  "lock is taken once");
}
}  // namespace

MutexGuard& MutexGuard::operator=(MutexGuard&& other) noexcept {
  if (this != &other) {
    unlock();
    mutex_ = other.mutex_;
    owner_ = other.owner_;
    other.mutex_ = nullptr;
  }
  return *this;
}

void MutexGuard::unlock() noexcept {
  if (mutex_ == nullptr) return;
  Mutex* mutex = mutex_;
  mutex_ = nullptr;
  mutex->unlock_as(owner_, "MutexGuard unlock");
}

Mutex::~Mutex() {
  const std::uint32_t state = queue_.lock();
  if (!queue_.empty()) {
    detail::die_with(
        "fiberjob: Mutex destroyed while jobs, coroutines or threads still wait to lock it; "
        "let every lock on it return (and unlock) before the mutex goes out of scope.");
  }
  queue_.unlock(state);
}

bool Mutex::try_lock_as(const void* owner) noexcept {
  if (!queue_.try_update(0, kHeld)) return false;  // held, waited for, or the queue is busy
  owner_.store(owner, std::memory_order_relaxed);  // relaxed: see owner_
  return true;
}

bool Mutex::try_lock() noexcept {
  if (!try_lock_as(detail::current_token())) return false;
  detail::note_plain_lock(+1);
  return true;
}

void Mutex::lock() {
  const detail::RunSegment here = detail::current_segment();
  // relaxed: see owner_fiber_ (only this segment's own writes can match).
  const bool same_segment = here.fiber != nullptr &&
                            owner_fiber_.load(std::memory_order_relaxed) == here.fiber &&
                            owner_segment_.load(std::memory_order_relaxed) == here.segment;
  // The job running here owns it through a guard one of its coroutines took (before or after
  // any suspension): only that job can unlock it, and it would be waiting here.
  const void* job = detail::current_job_owner_token();
  if (same_segment || (job != nullptr && owner_.load(std::memory_order_relaxed) == job)) {
    throw Error(ErrorCode::SyncMisuse,
                "fiberjob: Mutex lock() by code that runs in a coroutine job holding the same "
                "mutex through co_await scoped_lock(): it would wait for itself forever "
                "(fiberjob::Mutex is not recursive). Pass the guard down, or unlock it first");
  }
  lock_as(detail::current_token());
  detail::note_plain_lock(+1);
}

void Mutex::lock_as(const void* owner) {
  if (owner_.load(std::memory_order_relaxed) == owner) throw_recursive("lock");
  if (try_lock_as(owner)) return;
  // Woken: the hand-off made this waiter the owner (waiter_token of its node is `owner`),
  // unless the stop took the node first.
  constexpr const char* kCall = "Mutex::lock";
  finish_lock(detail::block_on_stoppable(this, {.link = &Mutex::link_locker,
                                                .unlink = &Mutex::unlink_locker,
                                                .what = "Mutex",
                                                .call = kCall}),
              kCall);
}

void Mutex::finish_lock(detail::WaitEnd end, const char* call) {
  if (end == detail::WaitEnd::Completed) return;
  if (end == detail::WaitEnd::GiveBack) release();  // to the next waiter: never lost
  detail::throw_cancelled(call);
}

void Mutex::unlock() noexcept {
  unlock_as(detail::current_token(), "unlock");
  detail::note_plain_lock(-1);
}

void Mutex::unlock_as(const void* owner, const char* what) noexcept {
  if (owner_.load(std::memory_order_relaxed) != owner) {  // relaxed: see owner_
    std::string message = std::string("fiberjob: Mutex ") + what +
                          " by a job, coroutine or thread that does not own it (not locked, "
                          "or locked by another); unlock only what you locked, on the same "
                          "job, coroutine (its guard) or thread.";
    detail::die_with(message.c_str());
  }
  release();
}

void Mutex::release() noexcept {
  owner_fiber_.store(nullptr, std::memory_order_relaxed);  // relaxed: see owner_fiber_
  owner_.store(nullptr, std::memory_order_relaxed);        // relaxed: see owner_
  if (queue_.try_update(kHeld, 0)) return;                 // nobody waits: free
  queue_.lock();
  WaitNode* next = queue_.pop_front();
  if (next == nullptr) {  // the word was only busy (a linker that then took the fast way)
    queue_.unlock(0);
    return;
  }
  owner_.store(detail::waiter_token(*next), std::memory_order_relaxed);  // relaxed: owner_
  queue_.unlock(queue_.empty() ? kHeld : kHeld | kWaiters);              // last touch of the mutex
  detail::wake_chain(next);
}

void Mutex::acquire_or_queue(WaitNode& node) noexcept {
  const std::uint32_t state = queue_.lock();
  if ((state & kHeld) == 0) {
    owner_.store(detail::waiter_token(node), std::memory_order_relaxed);  // relaxed: owner_
    queue_.unlock(kHeld);
    node.next = nullptr;
    detail::wake_chain(&node);
    return;
  }
  queue_.push_back(node);
  queue_.unlock(kHeld | kWaiters);
}

bool Mutex::link_locker(void* object, WaitNode& node) noexcept {
  const detail::StoppableWait& wait = *static_cast<detail::StoppableWait*>(object);
  Mutex& mutex = *static_cast<Mutex*>(wait.primitive);
  const std::uint32_t state = mutex.queue_.lock();
  if ((state & kHeld) == 0) {  // freed since the failed fast path: take it
    mutex.owner_.store(detail::waiter_token(node), std::memory_order_relaxed);  // relaxed
    mutex.queue_.unlock(kHeld);
    return false;
  }
  if (wait.wake() != nullptr && !wait.wake()->commit(node)) {  // the job's stop came first
    mutex.queue_.unlock(state);
    return false;
  }
  mutex.queue_.push_back(node);
  mutex.queue_.unlock(kHeld | kWaiters);
  return true;
}

bool Mutex::unlink_locker(void* object, WaitNode& node) noexcept {
  // The last waiter gone: the lock-free unlock may free it again (kHeld stays: someone owns it).
  return static_cast<Mutex*>(static_cast<detail::StoppableWait*>(object)->primitive)
      ->queue_.withdraw(node, kWaiters);
}

bool Mutex::LockAwaiter::await_suspend(std::coroutine_handle<> coroutine) {
  owner_ = detail::coroutine_owner_token(coroutine);  // the job: a recycled frame is not it
  if (mutex_.owner_.load(std::memory_order_relaxed) == owner_) throw_recursive("co_await lock");
  if (mutex_.try_lock_as(owner_)) return false;
  if (!wait_.begin(detail::current_job_stop(), &mutex_, &Mutex::unlink_locker)) return false;
  return detail::suspend_coroutine_on({&Mutex::link_locker, &wait_, "Mutex", &mutex_}, node_,
                                      nullptr, coroutine);
}

MutexGuard Mutex::LockAwaiter::await_resume() {
  mutex_.finish_lock(wait_.end(), "co_await Mutex::scoped_lock()");
  const detail::RunSegment here = detail::current_segment();
  // relaxed: see owner_fiber_ (this coroutine owns the mutex now).
  mutex_.owner_segment_.store(here.segment, std::memory_order_relaxed);
  mutex_.owner_fiber_.store(here.fiber, std::memory_order_relaxed);
  return MutexGuard(mutex_, owner_);
}

}  // namespace fiberjob
