#pragma once
// The one way the library stops a program: a mistake that cannot be reported by throwing
// (a destructor, unlock, a noexcept path) or a resource that ran out where a job would be lost.

namespace fiberjob::detail {

/// Prints `message` and a newline to stderr, flushes it, and aborts.
/// \param message "fiberjob: " + what went wrong, naming the mistake, then what to do instead
///   (the fix), e.g. "fiberjob: Counter destroyed while jobs still wait on it; keep the counter
///   alive until every wait on it has returned." No trailing newline.
/// Thread-safety: any thread. Suspends: no. Errors: never returns.
[[noreturn]] void die_with(const char* message) noexcept;

}  // namespace fiberjob::detail
