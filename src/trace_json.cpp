// The Chrome Trace Event JSON of JobSystem::write_trace, and its flow arrows: from a job's
// spawn to its run, and from the signal that woke a waiter to the waiter's resume.
//
// Flows are recorded without ids (trace.hpp, TraceKind::SpawnFlow): each end carries the
// address of the job record or wait node, which names one pending spawn or wait at a time.
// Here all ends are sorted by (kind, address, time) and each start is paired with the end that
// follows it; ends whose partner was dropped, overwritten or cut off are left out, and so are
// ends that lie in no slice of their track in the output (TrackSlices). Each pair
// gets a fresh id, written as Trace Event flow events: "s" (bound to the enclosing slice) and
// "f" with "bp":"e" (bound to the enclosing slice: the run segment that begins at that time).

#include <fmt/core.h>

#include <algorithm>
#include <iterator>
#include <limits>
#include <string>
#include <tuple>
#include <utility>

#include "trace_export.hpp"

namespace fiberjob::detail {
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
    case TraceKind::Wake:
      return "wake";
    case TraceKind::SpawnFlow:
    case TraceKind::RunFlow:
      return "spawn";
    case TraceKind::WakeFlow:
    case TraceKind::ResumeFlow:
      return "wake";
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

/// Microseconds since `origin_ns`, with nanosecond digits; 0 for a time before it (a zone on
/// the non-worker track that began before the job system started).
double micros(std::uint64_t ns, std::uint64_t origin_ns) noexcept {
  return ns > origin_ns ? static_cast<double>(ns - origin_ns) / 1000.0 : 0.0;
}

/// Writes one recorded event (not a flow end) of track `tid` (after a ",\n" separator).
void write_event(std::FILE* out, const TraceEvent& e, std::uint64_t origin_ns, std::size_t tid) {
  const std::uint64_t start_ns = std::max(e.start_ns, origin_ns);
  const double ts_us = micros(start_ns, origin_ns);
  const double dur_us =
      e.end_ns > start_ns ? static_cast<double>(e.end_ns - start_ns) / 1000.0 : 0.0;
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
    case TraceKind::Wake:
      fmt::print(out,
                 ",\n{{\"name\":\"wake\",\"cat\":\"wake\",\"ph\":\"X\",\"ts\":{:.3f},"
                 "\"dur\":{:.3f},\"pid\":1,\"tid\":{},\"args\":{{\"waiters\":{}}}}}",
                 ts_us, dur_us, tid, e.id);
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
    default:  // flow ends: write_flows
      return;
  }
}

/// One end of a flow, gathered from every track.
struct FlowEnd {
  bool spawn;  ///< a spawn flow (SpawnFlow/RunFlow), else a wake flow
  std::uint64_t key;
  std::uint64_t ts_ns;
  bool start;
  std::size_t tid;
};

/// True when `e` belongs in a trace that starts at `window_start_ns`.
bool in_window(const TraceEvent& e, std::uint64_t window_start_ns) noexcept {
  return recorded_ns(e) >= window_start_ns;
}

/// True for the kinds written as complete ("X") events: the slices a flow end binds to.
bool is_slice(TraceKind kind) noexcept {
  return kind == TraceKind::Job || kind == TraceKind::Coroutine || kind == TraceKind::Idle ||
         kind == TraceKind::Zone || kind == TraceKind::Wake;
}

/// The slices one track writes, for asking whether a time lies inside one of them. A flow end
/// whose slice is not in the output (dropped when the buffer was full, overwritten in ring
/// mode, or still open when write_trace copied the track) would bind to nothing, so the arrow
/// is left out.
class TrackSlices {
 public:
  TrackSlices(const TraceTrack& track, std::uint64_t window_start_ns) {
    for (const TraceEvent& e : track.copy.events) {
      if (is_slice(e.kind) && in_window(e, window_start_ns))
        spans_.emplace_back(e.start_ns, e.end_ns);
    }
    std::sort(spans_.begin(), spans_.end());
    std::uint64_t max_end = 0;
    for (auto& span : spans_) {  // second: the latest end among the spans up to this one
      max_end = std::max(max_end, span.second);
      span.second = max_end;
    }
  }

  [[nodiscard]] bool contain(std::uint64_t ns) const {
    auto after = std::upper_bound(spans_.begin(), spans_.end(),
                                  std::pair(ns, std::numeric_limits<std::uint64_t>::max()));
    return after != spans_.begin() && std::prev(after)->second >= ns;
  }

 private:
  std::vector<std::pair<std::uint64_t, std::uint64_t>> spans_;  // (start, running max end)
};

/// Pairs the flow ends kept in the window whose slices are written, and writes each pair as
/// "s" and "f".
void write_flows(std::FILE* out, const std::vector<TraceTrack>& tracks, std::uint64_t origin_ns,
                 std::uint64_t window_start_ns) {
  std::vector<FlowEnd> ends;
  for (const TraceTrack& track : tracks) {
    const TrackSlices slices(track, window_start_ns);
    for (const TraceEvent& e : track.copy.events) {
      if (!is_flow(e.kind) || e.start_ns < window_start_ns || !slices.contain(e.start_ns)) {
        continue;
      }
      ends.push_back(FlowEnd{
          e.kind == TraceKind::SpawnFlow || e.kind == TraceKind::RunFlow, e.end_ns, e.start_ns,
          e.kind == TraceKind::SpawnFlow || e.kind == TraceKind::WakeFlow, track.tid});
    }
  }
  // At equal times a start sorts first: its end cannot come before it.
  std::sort(ends.begin(), ends.end(), [](const FlowEnd& a, const FlowEnd& b) {
    return std::tuple(a.spawn, a.key, a.ts_ns, !a.start) <
           std::tuple(b.spawn, b.key, b.ts_ns, !b.start);
  });
  std::uint64_t id = 0;
  for (std::size_t i = 0; i + 1 < ends.size(); ++i) {
    const FlowEnd& s = ends[i];
    const FlowEnd& f = ends[i + 1];
    if (!s.start || f.start || s.spawn != f.spawn || s.key != f.key) continue;
    ++id;
    const char* name = s.spawn ? "spawn" : "wake";
    fmt::print(out,
               ",\n{{\"name\":\"{}\",\"cat\":\"flow\",\"ph\":\"s\",\"id\":{},\"ts\":{:.3f},"
               "\"pid\":1,\"tid\":{}}}",
               name, id, micros(s.ts_ns, origin_ns), s.tid);
    fmt::print(out,
               ",\n{{\"name\":\"{}\",\"cat\":\"flow\",\"ph\":\"f\",\"bp\":\"e\",\"id\":{},"
               "\"ts\":{:.3f},\"pid\":1,\"tid\":{}}}",
               name, id, micros(f.ts_ns, origin_ns), f.tid);
    ++i;
  }
}

}  // namespace

void write_trace_json(std::FILE* out, const std::vector<TraceTrack>& tracks,
                      std::uint64_t origin_ns, const TraceSummary& summary) {
  fmt::print(out, "{{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
  fmt::print(out,
             "{{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{{\"name\":\"fiberjob\""
             "}}}}");
  for (const TraceTrack& track : tracks) {
    fmt::print(out,
               ",\n{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{},"
               "\"args\":{{\"name\":\"{}\"}}}}",
               track.tid, track.name);
    for (const TraceEvent& e : track.copy.events) {
      if (in_window(e, summary.window_start_ns)) write_event(out, e, origin_ns, track.tid);
    }
  }
  write_flows(out, tracks, origin_ns, summary.window_start_ns);
  fmt::print(out,
             "\n],\"otherData\":{{\"dropped_events\":{},\"overwritten_events\":{},"
             "\"first_frame\":{},\"complete\":{},\"copied_at_us\":{:.3f}}}}}\n",
             summary.dropped, summary.overwritten,
             summary.frames != 0 ? std::to_string(summary.first_frame) : std::string("null"),
             summary.dropped == 0 && summary.window_complete ? "true" : "false",
             micros(summary.copied_at_ns, origin_ns));
}

}  // namespace fiberjob::detail
