#pragma once
/// \file
/// `JobOptions`: how one job is spawned — its priority, its stack class and a name for tracing.

#include <cstdint>

#include "fiberjob/config.hpp"

namespace fiberjob {

/// Per-spawn options of `JobSystem::run` and `Context::spawn` (the overloads that take one).
/// A plain aggregate: `{.priority = Priority::High, .stack_class = 1, .name = "navmesh"}`.
/// Thread-safety: a value; copy it freely.
struct JobOptions {
  /// Scheduling class, as the `Priority` argument of the other overloads.
  Priority priority = Priority::Normal;
  /// The fiber stack the job runs on: 0 = the default class (`Config::fiber_stack_size`),
  /// i + 1 = `Config::stack_classes[i]`. A plain job of a class other than its worker's
  /// current fiber's starts on a fiber taken from that class's pool (one extra switch) and
  /// keeps that fiber while it suspends; the worker goes back to a default fiber afterwards.
  /// A coroutine job's first run segment (up to its first suspension) runs on it; later
  /// segments run on whatever fiber resumes it. A job waiting for its children runs them
  /// inline on its stack only when they are of its class or the default one. A plain job may
  /// not wait holding the last fiber its class may have (`StackClass::max_fiber_count`).
  /// Errors: `Error` (`InvalidArgument`) at spawn when there is no such class.
  std::uint8_t stack_class = 0;
  /// A name for traces and debuggers (a string that outlives the job, e.g. a literal); nullptr
  /// for none. Stored with the job; not copied. With `Config::tracing`, the job's run segments
  /// carry it in the trace (unnamed: "job", or "coroutine" for a coroutine job's). A suspended
  /// job shows it in `write_diagnostics`, the hang report and the gdb extension.
  const char* name = nullptr;
};

}  // namespace fiberjob
