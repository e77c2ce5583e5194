#pragma once
/// \file
/// Hang diagnostics: what every live job system is doing right now.

#include <cstdio>

namespace fiberjob {

/// Writes a report of every live `JobSystem` to `out`: per worker its phase (running a job,
/// searching, parked, stopped), jobs run and queued jobs per priority; the injector's queued
/// jobs; fibers in use; and every suspended fiber with the address of the counter it waits on
/// (only the address: the counter is never read, it may have died since). Meant for watchdogs
/// and debuggers when something hangs.
/// Thread-safety: any thread, at any time. Under the mutex of the registry of live job systems
/// (which a `JobSystem` also takes when it is created and destroyed), it reads each system's
/// atomics with relaxed loads (a racy but safe snapshot) and its fields fixed at construction
/// (worker and fiber counts, indices); never a counter or a job's memory.
/// Suspends: no. Allocation: none. Not async-signal-safe (takes a mutex, uses stdio).
/// \param out the stream to write to (e.g. stderr); written with fprintf, not closed.
void write_diagnostics(std::FILE* out) noexcept;

}  // namespace fiberjob
