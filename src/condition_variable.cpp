// ConditionVariable: a FIFO of waiters (wait_queue.cpp) that a notify moves onto the mutex
// (Mutex::acquire_or_queue): wait morphing, so a waiter resumes owning the mutex.

#include "fiberjob/condition_variable.hpp"

#include "fiberjob/error.hpp"
#include "stoppable_block.hpp"

namespace fiberjob {

using detail::WaitNode;

ConditionVariable::~ConditionVariable() {
  const std::uint32_t state = queue_.lock();
  if (!queue_.empty()) {
    detail::die_with(
        "fiberjob: ConditionVariable destroyed while jobs, coroutines or threads still wait on "
        "it; notify them and let every wait return before it goes out of scope.");
  }
  queue_.unlock(state);
}

void ConditionVariable::check_wait(Mutex* mutex, const void* owner) {
  if (mutex == nullptr || mutex->owner_.load(std::memory_order_relaxed) != owner) {
    throw Error(ErrorCode::SyncMisuse,
                "fiberjob: ConditionVariable::wait without owning the mutex; lock it (the "
                "unique_lock or guard must own it, taken by this job, coroutine or thread) "
                "before waiting");
  }
  const std::uint32_t state = queue_.lock();
  const bool other = mutex_ != nullptr && mutex_ != mutex && !queue_.empty();
  if (!other) mutex_ = mutex;
  queue_.unlock(state);
  if (other) {
    throw Error(ErrorCode::SyncMisuse,
                "fiberjob: ConditionVariable::wait with another mutex than the current waiters "
                "use; every wait on one condition variable must use the same mutex");
  }
}

void ConditionVariable::wait(std::unique_lock<Mutex>& lock) {
  const void* owner = detail::current_token();
  check_wait(lock.owns_lock() ? lock.mutex() : nullptr, owner);
  // Resumed owning the mutex again (handed over by notify, or the stop, and the mutex's
  // release); a stop before the wait throws owning it.
  constexpr const char* kCall = "ConditionVariable::wait";
  finish_wait(detail::block_on_stoppable(this, {.link = &ConditionVariable::link_waiter,
                                                .unlink = &ConditionVariable::unlink_waiter,
                                                .hand_over = &ConditionVariable::hand_to_own_mutex,
                                                .mutex = lock.mutex(),
                                                .what = "ConditionVariable",
                                                .call = kCall}),
              kCall);
}

bool ConditionVariable::begin_wait(detail::StoppableWait& wait, ConditionVariable& cv,
                                   Mutex* mutex) {
  wait.mutex = mutex;
  return wait.begin(detail::current_job_stop(), &cv, &ConditionVariable::unlink_waiter,
                    &ConditionVariable::hand_to_own_mutex);
}

void ConditionVariable::finish_wait(detail::WaitEnd end, const char* call) {
  if (end == detail::WaitEnd::Completed) return;
  if (end == detail::WaitEnd::GiveBack) notify_one();  // the notify it took: not lost
  detail::throw_cancelled(call);
}

bool ConditionVariable::unlink_waiter(void* object, WaitNode& node) noexcept {
  return static_cast<ConditionVariable*>(static_cast<detail::StoppableWait*>(object)->primitive)
      ->queue_.withdraw(node);
}

void ConditionVariable::hand_to_own_mutex(void* object, WaitNode& node) noexcept {
  node.next = nullptr;
  static_cast<Mutex*>(static_cast<detail::StoppableWait*>(object)->mutex)->acquire_or_queue(node);
}

bool ConditionVariable::WaitAwaiter::await_suspend(std::coroutine_handle<> coroutine) {
  cv_.check_wait(guard_.mutex_, guard_.owner_);
  // This frame waits, so this frame is the owner the hand-over gives the mutex back to (the
  // guard may have been made by another coroutine and moved here).
  guard_.owner_ = detail::coroutine_owner_token(coroutine);
  guard_.mutex_->owner_.store(guard_.owner_, std::memory_order_relaxed);  // relaxed: owner_
  if (!begin_wait(wait_, cv_, guard_.mutex_)) return false;  // await_resume throws, owning it
  return detail::suspend_coroutine_on(
      {&ConditionVariable::link_waiter, &wait_, "ConditionVariable", &cv_}, node_, nullptr,
      coroutine);
}

bool ConditionVariable::link_waiter(void* object, WaitNode& node) noexcept {
  const detail::StoppableWait& wait = *static_cast<detail::StoppableWait*>(object);
  ConditionVariable& cv = *static_cast<ConditionVariable*>(wait.primitive);
  const std::uint32_t state = cv.queue_.lock();
  Mutex* mutex = cv.mutex_;
  // check_wait ran before this link, unlocked: a wait with another mutex may have replaced
  // mutex_ in between. The waiter owns its own mutex, so it must own this one.
  if (mutex->owner_.load(std::memory_order_relaxed) != detail::waiter_token(node)) {
    detail::die_with(
        "fiberjob: ConditionVariable waited on with two different mutexes at once; every wait "
        "on one condition variable must use the same mutex.");
  }
  if (wait.wake() != nullptr && !wait.wake()->commit(node)) {  // the job's stop came first
    cv.queue_.unlock(state);
    return false;  // still owning the mutex: the waiter throws Cancelled
  }
  cv.queue_.push_back(node);
  cv.queue_.unlock(state);
  // Linked first, released second: a notify between the two finds the waiter and queues it
  // on the mutex, which it then gets from this release or a later one. Nothing is lost.
  mutex->release();
  return true;
}

void ConditionVariable::hand_to_mutex(Mutex* mutex, WaitNode* chain) noexcept {
  while (chain != nullptr) {
    WaitNode* next = chain->next;  // before the hand-over: the waiter may run at once
    mutex->acquire_or_queue(*chain);
    chain = next;
  }
}

void ConditionVariable::notify_one() noexcept {
  const std::uint32_t state = queue_.lock();
  WaitNode* node = queue_.pop_front();
  Mutex* mutex = mutex_;  // read under the lock: once a waiter runs, this may be gone
  queue_.unlock(state);
  if (node != nullptr) hand_to_mutex(mutex, node);
}

void ConditionVariable::notify_all() noexcept {
  const std::uint32_t state = queue_.lock();
  WaitNode* chain = queue_.take_all();
  Mutex* mutex = mutex_;  // read under the lock: once a waiter runs, this may be gone
  queue_.unlock(state);
  hand_to_mutex(mutex, chain);
}

}  // namespace fiberjob
