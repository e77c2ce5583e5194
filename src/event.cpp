// Event: manual-reset and auto-reset, over the wait queue (wait_queue.cpp). The queue word's
// state is kSet or 0; the list holds waiters only while the event is not set.

#include "fiberjob/event.hpp"

#include "stoppable_block.hpp"

namespace fiberjob {

using detail::WaitNode;

Event::Event(Mode mode, bool initially_set) noexcept
    : queue_(initially_set ? kSet : 0), mode_(mode) {}

Event::~Event() {
  const std::uint32_t state = queue_.lock();
  if (!queue_.empty()) {
    detail::die_with(
        "fiberjob: Event destroyed while jobs, coroutines or threads still wait on it; set() "
        "it and let every wait on it return before the event goes out of scope. A job left "
        "waiting by a JobSystem destroyed meanwhile never returns: set() the event before "
        "destroying it all the same.");
  }
  queue_.unlock(state);
}

void Event::set() noexcept {
  if (queue_.state() == kSet) return;  // set already: no waiter can be linked
  queue_.lock();
  WaitNode* woken = nullptr;
  std::uint32_t next = kSet;
  if (mode_ == Mode::Manual) {
    woken = queue_.take_all();
  } else if ((woken = queue_.pop_front()) != nullptr) {
    next = 0;  // that waiter took this set
  }
  queue_.unlock(next);  // our last touch of the event: woken waiters may destroy it
  detail::wake_chain(woken);
}

void Event::reset() noexcept {
  if (queue_.try_update(kSet, 0)) return;
  queue_.unlock(queue_.lock() & ~kSet);
}

bool Event::is_set() const noexcept { return queue_.state() == kSet; }

bool Event::try_wait() noexcept {
  if (mode_ == Mode::Manual) return is_set();
  return queue_.try_update(kSet, 0);  // consume the set
}

void Event::wait() {
  if (try_wait()) return;
  constexpr const char* kCall = "this_fiber::wait(event)";
  finish_wait(detail::block_on_stoppable(this, {.link = &Event::link_waiter,
                                                .unlink = &Event::unlink_waiter,
                                                .what = "Event",
                                                .call = kCall}),
              kCall);
}

void Event::finish_wait(detail::WaitEnd end, const char* call) {
  if (end == detail::WaitEnd::Completed) return;
  if (end == detail::WaitEnd::GiveBack && mode_ == Mode::Auto) set();  // not swallowed
  detail::throw_cancelled(call);
}

bool Event::link_waiter(void* object, WaitNode& node) noexcept {
  const detail::StoppableWait& wait = *static_cast<detail::StoppableWait*>(object);
  Event& event = *static_cast<Event*>(wait.primitive);
  const std::uint32_t state = event.queue_.lock();
  if (state == kSet) {
    event.queue_.unlock(event.mode_ == Mode::Auto ? 0 : kSet);
    return false;
  }
  if (wait.wake() != nullptr && !wait.wake()->commit(node)) {  // the job's stop came first
    event.queue_.unlock(state);
    return false;
  }
  event.queue_.push_back(node);
  event.queue_.unlock(state);
  return true;
}

bool Event::unlink_waiter(void* object, WaitNode& node) noexcept {
  return static_cast<Event*>(static_cast<detail::StoppableWait*>(object)->primitive)->remove(node);
}

bool Event::remove(WaitNode& node) noexcept { return queue_.withdraw(node); }

}  // namespace fiberjob
