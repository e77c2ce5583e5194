#pragma once
// Helpers of the cancellation tests: recognising a Cancelled error, the outcome a test compares,
// and a task that finishes after a few yields.

#include <fiberjob/fiberjob.hpp>

#include <string>

namespace fiberjob::test {

/// Whether `error` is the Cancelled error of a stopped job.
inline bool is_cancelled(const Error& error) { return error.code() == ErrorCode::Cancelled; }

/// "cancelled" for a Cancelled error, else the error's message.
inline std::string outcome_of(const Error& error) {
  return is_cancelled(error) ? "cancelled" : error.what();
}

/// Yields `yields` times (each yield is a cancellation point), then returns `value`.
inline Task<int> value_after_yields(Context& ctx, int value, int yields) {
  for (int i = 0; i < yields; ++i) co_await ctx.yield();
  co_return value;
}

}  // namespace fiberjob::test
