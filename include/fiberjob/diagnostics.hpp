#pragma once
/// \file
/// Hang diagnostics: what every live job system is doing right now.

#include <cstdio>

namespace fiberjob {

/// Writes a report of every live `JobSystem` to `out`: per worker its phase (running a job,
/// searching, parked, stopped), jobs run and queued jobs per priority; the injector's queued
/// jobs; fibers in use; and every suspended fiber with the counter it waits on (address,
/// pending units, whether waiters are linked). Meant for watchdogs and debuggers when
/// something hangs.
/// Thread-safety: any thread, at any time; reads only atomics (a racy but safe snapshot).
/// Suspends: no. Allocation: none. Not async-signal-safe (takes a mutex, uses stdio).
void write_diagnostics(std::FILE* out) noexcept;

}  // namespace fiberjob
