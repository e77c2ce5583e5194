#pragma once
// The parts of JobSystem::write_trace: copied tracks (trace.cpp) written as JSON with their
// flow arrows paired (trace_json.cpp).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "trace.hpp"

namespace fiberjob::detail {

/// One track of the trace (a worker, an attached thread's slot, or the non-worker threads).
struct TraceTrack {
  std::size_t tid;
  std::string name;
  TraceSnapshot copy;
};

/// What write_trace found while copying, for the JSON's otherData and the console.
struct TraceSummary {
  /// Ring mode: events before this time are left out (0: none).
  std::uint64_t window_start_ns = 0;
  /// The frame number of the first frame written (its trace_frame_mark): in ring mode the
  /// first of the last N frames, or of fewer when the buffers held fewer marks.
  std::uint32_t first_frame = 0;
  /// How many frame marks were written; 0: the trace holds no frame mark, and first_frame means
  /// nothing (the JSON says null).
  std::size_t frames = 0;
  std::uint64_t dropped = 0;
  std::uint64_t overwritten = 0;
  /// False when some track lost (by overwriting) events recorded after window_start_ns.
  bool window_complete = true;
  /// When the tracks had been copied: every event written was recorded before it (otherData
  /// "copied_at_us", the bound scripts/check_trace.py holds each time to).
  std::uint64_t copied_at_ns = 0;
};

/// When `e` was recorded: the end of a span, the time of an instant.
inline std::uint64_t recorded_ns(const TraceEvent& e) noexcept {
  switch (e.kind) {
    case TraceKind::Job:
    case TraceKind::Coroutine:
    case TraceKind::Idle:
    case TraceKind::Zone:
    case TraceKind::Wake:
      return e.end_ns;
    default:
      return e.start_ns;
  }
}

/// True for the flow ends (SpawnFlow .. ResumeFlow), whose end_ns is a key.
inline bool is_flow(TraceKind kind) noexcept { return kind >= TraceKind::SpawnFlow; }

/// Writes the trace of `tracks` as Chrome Trace Event JSON: each track's events from
/// `summary.window_start_ns` on (a span that ends in the window is kept whole), and the flow
/// arrows whose both ends were kept. Times relative to `origin_ns`. Allocates.
void write_trace_json(std::FILE* out, const std::vector<TraceTrack>& tracks,
                      std::uint64_t origin_ns, const TraceSummary& summary);

}  // namespace fiberjob::detail
