// Chrome Trace Event JSON export of the per-worker timelines (opens in Perfetto and
// chrome://tracing). Format:
// https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU
//
// The export copies every buffer (TraceBuffer::snapshot), cuts the copies to the last
// Config::trace_ring_frames frames in ring mode, pairs the flow events (trace_flows.cpp) and
// writes the JSON. It allocates; recording never does.

#include <fmt/core.h>

#include <algorithm>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "fiberjob/error.hpp"

#include "scheduler.hpp"
#include "trace_export.hpp"

namespace fiberjob::detail {

std::unique_ptr<TraceSlot[]> TraceBuffer::allocate(std::size_t capacity) {
  try {
    // Not value-initialised: events are written before they are read (written_ bounds reads),
    // and untouched pages of a large buffer cost no memory.
    return std::unique_ptr<TraceSlot[]>(new TraceSlot[capacity]);
  } catch (const std::bad_alloc&) {
    throw Error(ErrorCode::InvalidConfig,
                "fiberjob: out of memory allocating a worker's trace buffer of "
                "Config::trace_events_per_worker = " +
                    std::to_string(capacity) + " events x " + std::to_string(sizeof(TraceSlot)) +
                    " bytes; lower Config::trace_events_per_worker (or Config::worker_count), "
                    "or turn Config::tracing off");
  }
}

TraceSnapshot TraceBuffer::snapshot() const {
  TraceSnapshot copy;
  // acquire: pairs with record()'s release store of written_: events [0, end) are readable.
  const std::uint64_t end = written_.load(std::memory_order_acquire);
  const std::uint64_t begin = end > capacity_ ? end - capacity_ : 0;
  copy.events.reserve(static_cast<std::size_t>(end - begin));
  for (std::uint64_t i = begin; i < end; ++i) {
    const TraceSlot& slot = slots_[i % capacity_];
    // relaxed: a torn copy is detected through begun_ below.
    copy.events.push_back(TraceEvent{
        slot.start_ns.load(std::memory_order_relaxed), slot.end_ns.load(std::memory_order_relaxed),
        slot.name.load(std::memory_order_relaxed), slot.id.load(std::memory_order_relaxed),
        slot.kind.load(std::memory_order_relaxed)});
  }
  // acquire fence: pairs with record()'s release fence. A slot copied from an overwrite that
  // had begun makes that overwrite's begun_ store visible here, so the copy is discarded.
  std::atomic_thread_fence(std::memory_order_acquire);
  const std::uint64_t begun = begun_.load(std::memory_order_relaxed);  // relaxed: see the fence
  const std::uint64_t valid_from = std::max(begin, begun > capacity_ ? begun - capacity_ : 0);
  copy.events.erase(
      copy.events.begin(),
      copy.events.begin() + static_cast<std::ptrdiff_t>(std::min(valid_from, end) - begin));
  copy.overwritten = std::min(valid_from, end);
  copy.dropped = dropped_.load(std::memory_order_relaxed);  // relaxed: a statistic
  return copy;
}

namespace {

/// Copies every track's buffer (the workers', then the non-worker track's). A slot for an
/// attached thread that never recorded anything (no thread attached, or none ran anything
/// there) gets no track.
std::vector<TraceTrack> copy_tracks(const std::vector<std::unique_ptr<Worker>>& workers,
                                    const ExternalTrack& external) {
  std::vector<TraceTrack> tracks;
  for (const auto& worker : workers) {
    TraceSnapshot copy = worker->trace.snapshot();
    if (worker->is_slot && copy.events.empty() && copy.overwritten == 0 && copy.dropped == 0) {
      continue;
    }
    tracks.push_back(TraceTrack{worker->index,
                                worker->is_slot
                                    ? fmt::format("attached thread (slot {})", worker->index)
                                    : fmt::format("worker {}", worker->index),
                                std::move(copy)});
  }
  external.read([&](const TraceBuffer& trace) {
    tracks.push_back(
        TraceTrack{workers.size(), "main thread (threads that are not workers)", trace.snapshot()});
  });
  return tracks;
}

/// The frame marks the tracks hold, oldest first.
std::vector<const TraceEvent*> frame_marks(const std::vector<TraceTrack>& tracks) {
  std::vector<const TraceEvent*> marks;
  for (const TraceTrack& track : tracks) {
    for (const TraceEvent& e : track.copy.events) {
      if (e.kind == TraceKind::FrameMark) marks.push_back(&e);
    }
  }
  std::sort(marks.begin(), marks.end(),
            [](const TraceEvent* a, const TraceEvent* b) { return a->start_ns < b->start_ns; });
  return marks;
}

/// Says on stderr what the trace lacks: a trace that silently lacks events misleads whoever
/// reads it.
void report_losses(const Config& config, const TraceSummary& summary) {
  if (summary.dropped != 0) {
    fmt::print(stderr,
               "fiberjob: the trace lacks {} events: a buffer filled up and dropped the later "
               "ones (Config::trace_events_per_worker = {}); raise it, trace fewer frames, or "
               "keep only the last frames (Config::trace_ring_frames)\n",
               summary.dropped, config.trace_events_per_worker);
  }
  if (config.trace_ring_frames == 0 || summary.overwritten == 0) return;
  if (summary.frames == 0) {
    fmt::print(stderr,
               "fiberjob: ring trace: {} older events were overwritten; the trace holds no "
               "frame mark of the last {} frames asked for (Config::trace_ring_frames)\n",
               summary.overwritten, config.trace_ring_frames);
  } else if (summary.frames < config.trace_ring_frames) {
    fmt::print(stderr,
               "fiberjob: ring trace: {} older events were overwritten; the trace holds {} of "
               "the last {} frames asked for (Config::trace_ring_frames), from frame {}\n",
               summary.overwritten, summary.frames, config.trace_ring_frames, summary.first_frame);
  } else {
    fmt::print(stderr,
               "fiberjob: ring trace: {} older events were overwritten; the trace holds the "
               "last {} frames asked for (Config::trace_ring_frames), from frame {}\n",
               summary.overwritten, config.trace_ring_frames, summary.first_frame);
  }
  if (!summary.window_complete) {
    fmt::print(stderr,
               "fiberjob: ring trace: the buffers did not hold all of those frames: their "
               "start lacks events (overwritten); raise Config::trace_events_per_worker (= {}) "
               "or lower Config::trace_ring_frames\n",
               config.trace_events_per_worker);
  }
}

}  // namespace

void Scheduler::write_trace(std::FILE* out) const {
  const std::vector<TraceTrack> tracks = copy_tracks(workers_, external_track_);
  TraceSummary summary;
  summary.copied_at_ns = trace_now_ns();
  const std::vector<const TraceEvent*> marks = frame_marks(tracks);
  std::size_t first = 0;  // the first mark written: all are, unless a ring holds more than N
  if (config_.trace_ring_frames != 0 && marks.size() >= config_.trace_ring_frames) {
    first = marks.size() - config_.trace_ring_frames;
    summary.window_start_ns = marks[first]->start_ns;
  }
  if (first < marks.size()) {
    // The first frame the trace holds: with fewer marks than N in the rings (tiny buffers
    // overwrote the older ones), the oldest mark they still hold, not frame 0.
    summary.first_frame = marks[first]->id;
    summary.frames = marks.size() - first;
  }
  for (const TraceTrack& track : tracks) {
    summary.dropped += track.copy.dropped;
    summary.overwritten += track.copy.overwritten;
    if (track.copy.overwritten != 0 &&
        (track.copy.events.empty() ||
         recorded_ns(track.copy.events.front()) > summary.window_start_ns)) {
      summary.window_complete = false;  // events after the window's start were overwritten
    }
  }
  write_trace_json(out, tracks, trace_origin_ns_, summary);
  report_losses(config_, summary);
}

}  // namespace fiberjob::detail
