#pragma once
/// \file
/// The job callable of a job spawned with a `std::stop_token`. Internal.

#include <stop_token>
#include <type_traits>
#include <utility>

#include "fiberjob/detail/job_record.hpp"

namespace fiberjob::detail {

/// Makes `stop` the running job's stop token (on its fiber: read by Context::stop_token and by
/// waits and yields); returns the previous one. Suspends: no.
const std::stop_token* set_job_stop(const std::stop_token* stop) noexcept;

/// A job callable with its stop token beside it, in the job's record: the token lives as long
/// as the job (for a coroutine job, until its final suspend). 8 bytes more than `Fn`.
template <class Fn>
struct Stoppable {
  Fn fn;
  std::stop_token token;

  auto operator()(Context& ctx) {
    if constexpr (std::is_void_v<typename JobResult<Fn>::type>) {
      // A plain job: the token is the job's until it returns (also across its suspensions:
      // the field travels with the fiber).
      struct Restore {
        const std::stop_token* previous;
        ~Restore() { set_job_stop(previous); }
      } restore{set_job_stop(&token)};
      call_job(fn, ctx);
    } else {
      // A coroutine job: its body first runs right after this returns, on this fiber
      // (invoke_job); from then on the token travels with the coroutine (WaitNode::job_stop).
      set_job_stop(&token);
      return call_job(fn, ctx);
    }
  }
};

}  // namespace fiberjob::detail
