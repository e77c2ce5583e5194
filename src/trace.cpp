// Chrome Trace Event JSON export of the per-worker timelines (opens in Perfetto and
// chrome://tracing). Format:
// https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU

#include <fmt/core.h>

#include <new>
#include <string>

#include "fiberjob/error.hpp"

#include "scheduler.hpp"

namespace fiberjob::detail {

std::unique_ptr<TraceEvent[]> TraceBuffer::allocate(std::size_t capacity) {
  try {
    // Not value-initialised: events are written before they are read (size() bounds reads),
    // and untouched pages of a large buffer cost no memory.
    return std::unique_ptr<TraceEvent[]>(new TraceEvent[capacity]);
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::InvalidConfig,
                "fiberjob: out of memory allocating a worker's trace buffer of "
                "Config::trace_events_per_worker = " +
                    std::to_string(capacity) + " events x " + std::to_string(sizeof(TraceEvent)) +
                    " bytes; lower Config::trace_events_per_worker (or Config::worker_count), "
                    "or turn Config::tracing off");
  }
}

namespace {

const char* event_name(TraceKind kind) noexcept {
  switch (kind) {
    case TraceKind::Job:
      return "job";
    case TraceKind::Coroutine:
      return "coroutine";
    case TraceKind::Idle:
      return "idle";
    case TraceKind::Steal:
      return "steal";
    case TraceKind::Suspend:
      return "suspend";
    case TraceKind::Resume:
      return "resume";
  }
  return "?";
}

}  // namespace

void Scheduler::write_trace(std::FILE* out) const {
  fmt::print(out, "{{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
  fmt::print(out,
             "{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{{\"name\":\"fiberjob\""
             "}}}}");
  std::uint64_t dropped = 0;
  for (const auto& worker : workers_) {
    fmt::print(out,
               ",\n{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{},"
               "\"args\":{{\"name\":\"worker {}\"}}}}",
               worker->index, worker->index);
    const TraceBuffer& trace = worker->trace;
    const std::size_t count = trace.size();
    dropped += trace.dropped();
    for (std::size_t i = 0; i < count; ++i) {
      const TraceEvent& e = trace[i];
      // Microseconds since the system started, with nanosecond digits.
      const double ts_us = static_cast<double>(e.start_ns - trace_origin_ns_) / 1000.0;
      const char* name = event_name(e.kind);
      const char* arg = e.kind == TraceKind::Steal ? "victim" : "fiber";
      if (e.kind == TraceKind::Job || e.kind == TraceKind::Coroutine || e.kind == TraceKind::Idle) {
        const double dur_us = static_cast<double>(e.end_ns - e.start_ns) / 1000.0;
        fmt::print(out,
                   ",\n{{\"name\":\"{}\",\"cat\":\"{}\",\"ph\":\"X\",\"ts\":{:.3f},\"dur\":{:.3f},"
                   "\"pid\":1,\"tid\":{},\"args\":{{\"{}\":{}}}}}",
                   name, name, ts_us, dur_us, worker->index, arg, e.id);
      } else {
        fmt::print(out,
                   ",\n{{\"name\":\"{}\",\"cat\":\"{}\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{:.3f},"
                   "\"pid\":1,\"tid\":{},\"args\":{{\"{}\":{}}}}}",
                   name, name, ts_us, worker->index, arg, e.id);
      }
    }
  }
  fmt::print(out, "\n],\"otherData\":{{\"dropped_events\":{}}}}}\n", dropped);
  if (dropped != 0) {
    // Also on the console: a trace that silently lacks its end misleads whoever reads it.
    fmt::print(stderr,
               "fiberjob: the trace lacks {} events: a worker's buffer filled up and dropped the "
               "later ones (Config::trace_events_per_worker = {}); raise it, or trace fewer "
               "frames\n",
               dropped, config_.trace_events_per_worker);
  }
}

}  // namespace fiberjob::detail
