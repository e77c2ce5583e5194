#pragma once
/// \file
/// User zones in the trace: `FIBERJOB_TRACE_SCOPE("physics")` marks the enclosing scope as a
/// named zone on the calling thread's track of `JobSystem::write_trace`'s timeline.

#include <atomic>
#include <cstdint>

namespace fiberjob {
namespace detail {

/// Live job systems with Config::tracing on (a TraceScope records nothing while it is 0).
/// seq_cst increments and decrements; the relaxed load in TraceScope pairs with nothing (a job
/// of a traced system runs after its system's increment, which its spawn orders).
extern std::atomic<int> g_traced_systems;
/// Out of line: the clock, at a zone's start.
std::uint64_t trace_scope_begin() noexcept;
/// Out of line: records the zone `name` from `start_ns` to now (trace_scope.cpp).
void trace_scope_end(const char* name, std::uint64_t start_ns) noexcept;

}  // namespace detail

/// A named zone in the trace, from construction to destruction; use FIBERJOB_TRACE_SCOPE.
/// On a worker (inside a job), the zone goes to that worker's track, nested in the job's run
/// segment; a zone that spans a suspension shows only its last run segment (the earlier ones
/// ran between other jobs, maybe on another worker). On any other thread it goes to the track
/// of the non-worker threads ("main thread") of the first live job system with tracing on.
/// Cost: with no job system tracing, one relaxed load and a predictable branch at each end;
/// while tracing, two clock reads and one event (32 bytes) in the worker's buffer (no lock, no
/// allocation; off a worker, under a mutex). Thread-safety: any thread. Does not suspend.
class TraceScope {
 public:
  /// \param name the zone's name, shown in the trace; must outlive the job system's last
  ///   write_trace (a string literal).
  explicit TraceScope(const char* name) noexcept : name_(name) {
    // relaxed: a hint; a system that starts tracing meanwhile misses this zone, nothing more.
    if (detail::g_traced_systems.load(std::memory_order_relaxed) != 0) [[unlikely]] {
      start_ns_ = detail::trace_scope_begin();
    }
  }
  ~TraceScope() {
    if (start_ns_ != 0) [[unlikely]]
      detail::trace_scope_end(name_, start_ns_);
  }
  TraceScope(const TraceScope&) = delete;
  TraceScope& operator=(const TraceScope&) = delete;

 private:
  const char* name_;
  std::uint64_t start_ns_ = 0;
};

}  // namespace fiberjob

/// Internal: pastes `a` and `b` (for FIBERJOB_TRACE_SCOPE's variable name).
#define FIBERJOB_TRACE_CONCAT_INNER(a, b) a##b
/// Internal: pastes `a` and `b` after expanding them (`__LINE__`).
#define FIBERJOB_TRACE_CONCAT(a, b) FIBERJOB_TRACE_CONCAT_INNER(a, b)

#if defined(FIBERJOB_NO_TRACE)
#define FIBERJOB_TRACE_SCOPE(name) static_cast<void>(0)
#else
/// Marks the rest of the enclosing scope as the zone `name` (a string literal) in the trace
/// (fiberjob::TraceScope). Compiled out when FIBERJOB_NO_TRACE is defined.
#define FIBERJOB_TRACE_SCOPE(name) \
  const ::fiberjob::TraceScope FIBERJOB_TRACE_CONCAT(fiberjob_trace_scope_, __LINE__)(name)
#endif
