#pragma once
/// \file
/// Hang diagnostics: what every live job system is doing right now.

#include <cstdio>

namespace fiberjob {

/// Writes a report of every live `JobSystem` to `out`: per worker its phase (running a job,
/// searching, parked, stopped), jobs run and queued jobs per priority; the injector's queued
/// jobs; fibers in use; and every suspended fiber with the address of the counter it waits on
/// (only the address: the counter is never read, it may have died since); and, for a system
/// with `Config::track_coroutine_jobs`, the await chain of each live coroutine job, innermost
/// task first (see `fiberjob::to_string(const AwaitChain&)` for the format). Meant for
/// watchdogs and debuggers when something hangs.
/// Thread-safety: any thread, at any time. Under the mutex of the registry of live job systems
/// (which a `JobSystem` also takes when it is created and destroyed), it reads each system's
/// atomics with relaxed loads (a racy but safe snapshot) and its fields fixed at construction
/// (worker and fiber counts, indices); never a counter or a plain job's memory. A coroutine
/// job's chain is copied under a lock that keeps its tasks' frames from being freed meanwhile.
/// Suspends: no. Allocation: none, except with tracked coroutine jobs (their chains are copied
/// and their functions named from the modules' symbol tables, read from disk). Not
/// async-signal-safe (takes a mutex, uses stdio).
/// \param out the stream to write to (e.g. stderr); written with fprintf, not closed.
void write_diagnostics(std::FILE* out) noexcept;

}  // namespace fiberjob
