#pragma once
// Tracing: per-worker event buffers, exported as Chrome Trace Event JSON (trace.cpp).
//
// Each worker owns one buffer and is its only writer: appending is a plain store of the event
// and a release store of the count, no lock, no allocation (the buffer is allocated when the
// system starts). A reader takes the count with acquire and reads that many events. A full
// buffer drops further events and counts them.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

namespace fiberjob::detail {

enum class TraceKind : std::uint8_t {
  Job,        ///< A job ran on this worker from start_ns to end_ns (one run segment).
  Coroutine,  ///< A coroutine resumed by Job::ResumeCoroutine ran on this worker.
  Idle,       ///< The worker slept (parked) from start_ns to end_ns.
  Steal,      ///< Instant: took a job from worker `id`'s deque.
  Suspend,    ///< Instant: fiber `id` suspended (wait or yield).
  Resume,     ///< Instant: fiber `id` resumed here.
  Zone,       ///< A user zone (FIBERJOB_TRACE_SCOPE) named `name` ran from start_ns to end_ns.
  FrameMark,  ///< Instant, all tracks: frame `id` began (JobSystem::trace_frame_mark).
  Wake,       ///< A signal made `id` waiters runnable from start_ns to end_ns (wake_list).
  // Flow ends. For these four, end_ns holds the flow's key, not a time: the address of the
  // job's record (spawn flows) or of the waiter's wait node (wake flows). An address names one
  // pending spawn or wait at a time, so write_trace pairs each start with the next end of the
  // same key on the timeline (trace_export.cpp); a record or node reused later starts a new
  // pair. No id is stored in the record or node, and none is allocated.
  SpawnFlow,   ///< Instant: a job was spawned here (flow start, bound to the spawning slice).
  RunFlow,     ///< Instant: that job's run began here (flow end, bound to its first segment).
  WakeFlow,    ///< Instant: a waiter was made runnable here (flow start, in a Wake slice).
  ResumeFlow,  ///< Instant: that waiter resumed here (flow end, bound to its next segment).
};

/// One recorded event, as the reader sees it.
struct TraceEvent {
  std::uint64_t start_ns;
  std::uint64_t end_ns;  ///< == start_ns for instant events; the key for flow events
  const char* name;      ///< Zone: its name (static storage); Job: JobOptions::name or nullptr
  std::uint32_t id;      ///< fiber index, victim worker for Steal, frame number for FrameMark
  TraceKind kind;
};
static_assert(sizeof(TraceEvent) == 32, "Config::trace_events_per_worker documents 32 bytes");

/// Nanoseconds on the steady clock.
inline std::uint64_t trace_now_ns() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

/// A TraceEvent in a buffer slot: relaxed atomic fields (plain moves on x86-64 and AArch64),
/// so that a reader may copy a slot that the writer is overwriting in ring mode; the copy is
/// then discarded (TraceBuffer::snapshot).
struct TraceSlot {
  std::atomic<std::uint64_t> start_ns;
  std::atomic<std::uint64_t> end_ns;
  std::atomic<const char*> name;
  std::atomic<std::uint32_t> id;
  std::atomic<TraceKind> kind;
};
static_assert(sizeof(TraceSlot) == sizeof(TraceEvent), "a slot holds one event");

/// The events a reader copied out of one buffer, and what the buffer lost.
struct TraceSnapshot {
  std::vector<TraceEvent> events;  ///< Oldest first.
  std::uint64_t dropped = 0;       ///< Refused because the buffer was full (not ring mode).
  std::uint64_t overwritten = 0;   ///< Overwritten by newer events (ring mode).
};

class TraceBuffer {
 public:
  /// `capacity` events (0: tracing off, nothing allocated). `ring`: when full, overwrite the
  /// oldest event instead of dropping the new one (Config::trace_ring_frames).
  /// Errors: Error (InvalidConfig) naming Config::trace_events_per_worker when the memory
  /// cannot be had (trace.cpp).
  explicit TraceBuffer(std::size_t capacity, bool ring = false)
      : slots_(capacity != 0 ? allocate(capacity) : nullptr), capacity_(capacity), ring_(ring) {}

  /// Appends an event. Owner thread only; lock-free, no allocation. In ring mode a full buffer
  /// overwrites its oldest event (seqlock-style, after Boehm, "Can seqlocks get along with
  /// programming language memory models?", MSPC 2012: `begun_`, then a release fence, then the
  /// slot, then `written_`).
  void record(TraceKind kind, std::uint64_t start_ns, std::uint64_t end_ns, std::uint32_t id,
              const char* name = nullptr) noexcept {
    // relaxed: single writer reads its own last store.
    const std::uint64_t n = written_.load(std::memory_order_relaxed);
    if (n >= capacity_) {
      if (!ring_) {
        // relaxed: a statistic.
        dropped_.store(dropped_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        return;
      }
      // relaxed + release fence: the fence orders this store before the slot's stores below;
      // pairs with the acquire fence in snapshot(), which then sees the slot as overwritten.
      begun_.store(n + 1, std::memory_order_relaxed);
      std::atomic_thread_fence(std::memory_order_release);
    }
    TraceSlot& slot = slots_[position_];
    position_ = position_ + 1 == capacity_ ? 0 : position_ + 1;
    // relaxed: published by the release store of written_ below.
    slot.start_ns.store(start_ns, std::memory_order_relaxed);
    slot.end_ns.store(end_ns, std::memory_order_relaxed);
    slot.name.store(name, std::memory_order_relaxed);
    slot.id.store(id, std::memory_order_relaxed);
    slot.kind.store(kind, std::memory_order_relaxed);
    written_.store(n + 1, std::memory_order_release);  // release: pairs with snapshot's acquire
  }

  /// Sets ring mode (see the constructor). Before the first record only.
  void set_ring(bool ring) noexcept { ring_ = ring; }

  /// Copies the events the buffer holds, oldest first. Any thread, while the owner records:
  /// events recorded meanwhile may be left out, and in ring mode an event overwritten while
  /// being copied is left out. Allocates (the copy). Errors: std::bad_alloc.
  [[nodiscard]] TraceSnapshot snapshot() const;

 private:
  static std::unique_ptr<TraceSlot[]> allocate(std::size_t capacity);

  std::unique_ptr<TraceSlot[]> slots_;
  std::uint64_t capacity_;
  bool ring_;
  /// The slot the next event goes to (owner only): written_ % capacity_, without a division.
  std::uint64_t position_ = 0;
  /// Events recorded in all (event i is in slot i % capacity_ while i >= written_ - capacity_).
  /// Single writer: stored with release after the event; snapshot() loads it with acquire
  /// (pairs), so that many events are readable. Stays <= capacity_ unless in ring mode.
  std::atomic<std::uint64_t> written_{0};
  /// Ring mode: 1 + the index of the last event whose slot the writer began to overwrite; see
  /// record() and snapshot() for the fences it pairs through. 0 while nothing was overwritten.
  std::atomic<std::uint64_t> begun_{0};
  /// Events refused because the buffer was full. Relaxed: a statistic, pairs with nothing.
  std::atomic<std::uint64_t> dropped_{0};
};

/// The track of the threads that are not workers of a job system (usually the main thread):
/// its zones and frame marks. Any thread may record, under the mutex (these events are a few
/// per frame, not per job). The buffer is allocated on first use.
class ExternalTrack {
 public:
  /// Appends an event (dropped and counted when the buffer is full, or the oldest overwritten
  /// with `ring`). `capacity`, `ring`: the buffer's size in events and mode, used on first use.
  /// Errors: Error (InvalidConfig) when it cannot be had.
  void record(std::size_t capacity, bool ring, TraceKind kind, std::uint64_t start_ns,
              std::uint64_t end_ns, std::uint32_t id, const char* name) {
    std::lock_guard lock(mutex_);
    if (buffer_ == nullptr) buffer_ = std::make_unique<TraceBuffer>(capacity, ring);
    buffer_->record(kind, start_ns, end_ns, id, name);
  }
  /// Calls `fn(buffer)` under the mutex if anything was recorded.
  template <class Fn>
  void read(Fn&& fn) const {
    std::lock_guard lock(mutex_);
    if (buffer_ != nullptr) fn(static_cast<const TraceBuffer&>(*buffer_));
  }

 private:
  mutable std::mutex mutex_;
  std::unique_ptr<TraceBuffer> buffer_;
};

struct Worker;

/// Records the start of the flow arrow from a spawn to the job's run (TraceKind::SpawnFlow),
/// keyed by the job's `record`, when the calling worker is inside a job's run segment (the
/// arrow binds to it); nothing otherwise. Caller: `worker`'s thread, with tracing on.
void trace_spawn(Worker& worker, const void* record) noexcept;

/// Records an event on the non-worker track of the first live job system with tracing on (the
/// registry's order; diagnostics.cpp). Nothing when there is none or its buffer cannot be had.
void record_on_external_track(TraceKind kind, std::uint64_t start_ns, std::uint64_t end_ns,
                              std::uint32_t id, const char* name) noexcept;

}  // namespace fiberjob::detail
