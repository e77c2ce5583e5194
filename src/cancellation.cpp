// Cancellation with std::stop_token: the running job's token (Fiber::job_stop, carried by a
// suspended coroutine in WaitNode::job_stop) and the error its waits and yields complete with.

#include <string>

#include "counter_wait_list.hpp"
#include "fiber_switch.hpp"
#include "fiberjob/context.hpp"
#include "fiberjob/error.hpp"

namespace fiberjob {
namespace detail {

void throw_cancelled(const char* call) {
  throw Error(ErrorCode::Cancelled,
              std::string("fiberjob: ") + call +
                  " in a job whose stop was requested (its stop token); the job unwinds");
}

void throw_if_stopped(const char* call) {
  const Fiber* self = current_fiber();
  if (self != nullptr) throw_if_job_stopped(self, call);
}

const std::stop_token* current_job_stop() noexcept {
  const Fiber* self = current_fiber();
  return self != nullptr ? self->job_stop : nullptr;
}

void join_counter(Counter& counter) {
  Fiber* const self = current_fiber();
  // Woken by the last signal, the counter may be gone: look at it only when told to.
  const bool check_error =
      self != nullptr ? wait_on_fiber(self, counter) : CounterWaitList::wait_on_thread(counter);
  if (check_error) CounterWaitList::rethrow_if_error(counter);
}

const std::stop_token* set_job_stop(const std::stop_token* stop) noexcept {
  Fiber* self = current_fiber();
  if (self == nullptr) return nullptr;
  return std::exchange(self->job_stop, stop);
}

}  // namespace detail

std::stop_token Context::stop_token() const noexcept {
  const detail::Fiber* self = detail::current_fiber();
  if (self == nullptr || self->job_stop == nullptr) return {};
  return *self->job_stop;
}

}  // namespace fiberjob
