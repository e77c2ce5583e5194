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
    case TraceKind::Zone:
      return "zone";
    case TraceKind::FrameMark:
      return "frame";
  }
  return "?";
}

/// `text` as the inside of a JSON string (zone names come from users).
std::string json_escaped(const char* text) {
  std::string escaped;
  for (const char* c = text; *c != '\0'; ++c) {
    if (*c == '"' || *c == '\\') {
      escaped += '\\';
      escaped += *c;
    } else if (static_cast<unsigned char>(*c) < 0x20) {
      escaped += fmt::format("\\u{:04x}", static_cast<unsigned>(*c));
    } else {
      escaped += *c;
    }
  }
  return escaped;
}

/// Writes one recorded event of track `tid` (after a ",\n" separator).
void write_event(std::FILE* out, const TraceEvent& e, std::uint64_t origin_ns, std::size_t tid) {
  // Microseconds since the system started, with nanosecond digits.
  const double ts_us = static_cast<double>(e.start_ns - origin_ns) / 1000.0;
  const double dur_us = static_cast<double>(e.end_ns - e.start_ns) / 1000.0;
  switch (e.kind) {
    case TraceKind::Zone:
      fmt::print(out,
                 ",\n{{\"name\":\"{}\",\"cat\":\"zone\",\"ph\":\"X\",\"ts\":{:.3f},\"dur\":{:.3f},"
                 "\"pid\":1,\"tid\":{}}}",
                 json_escaped(e.name), ts_us, dur_us, tid);
      return;
    case TraceKind::FrameMark:
      fmt::print(out,
                 ",\n{{\"name\":\"frame {}\",\"cat\":\"frame\",\"ph\":\"i\",\"s\":\"g\","
                 "\"ts\":{:.3f},\"pid\":1,\"tid\":{}}}",
                 e.id, ts_us, tid);
      return;
    case TraceKind::Job:
    case TraceKind::Coroutine:
    case TraceKind::Idle:
      // A job spawned with JobOptions::name shows that name; its category stays "job".
      fmt::print(out,
                 ",\n{{\"name\":\"{}\",\"cat\":\"{}\",\"ph\":\"X\",\"ts\":{:.3f},\"dur\":{:.3f},"
                 "\"pid\":1,\"tid\":{},\"args\":{{\"fiber\":{}}}}}",
                 e.name != nullptr ? json_escaped(e.name) : std::string(event_name(e.kind)),
                 event_name(e.kind), ts_us, dur_us, tid, e.id);
      return;
    case TraceKind::Steal:
    case TraceKind::Suspend:
    case TraceKind::Resume:
      fmt::print(out,
                 ",\n{{\"name\":\"{}\",\"cat\":\"{}\",\"ph\":\"i\",\"s\":\"t\",\"ts\":{:.3f},"
                 "\"pid\":1,\"tid\":{},\"args\":{{\"{}\":{}}}}}",
                 event_name(e.kind), event_name(e.kind), ts_us, tid,
                 e.kind == TraceKind::Steal ? "victim" : "fiber", e.id);
      return;
  }
}

/// Writes a track's name and its events; returns the events it dropped.
std::uint64_t write_track(std::FILE* out, const TraceBuffer& trace, std::uint64_t origin_ns,
                          std::size_t tid, const std::string& name) {
  fmt::print(out,
             ",\n{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{},"
             "\"args\":{{\"name\":\"{}\"}}}}",
             tid, name);
  const std::size_t count = trace.size();
  for (std::size_t i = 0; i < count; ++i) write_event(out, trace[i], origin_ns, tid);
  return trace.dropped();
}

}  // namespace

void Scheduler::write_trace(std::FILE* out) const {
  fmt::print(out, "{{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
  fmt::print(out,
             "{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{{\"name\":\"fiberjob\""
             "}}}}");
  std::uint64_t dropped = 0;
  for (const auto& worker : workers_) {
    const std::string name = worker->is_slot
                                 ? fmt::format("attached thread (slot {})", worker->index)
                                 : fmt::format("worker {}", worker->index);
    dropped += write_track(out, worker->trace, trace_origin_ns_, worker->index, name);
  }
  external_track_.read([&](const TraceBuffer& trace) {
    dropped += write_track(out, trace, trace_origin_ns_, workers_.size(),
                           "main thread (threads that are not workers)");
  });
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
