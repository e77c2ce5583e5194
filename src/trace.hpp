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
};

struct TraceEvent {
  std::uint64_t start_ns;
  std::uint64_t end_ns;  ///< == start_ns for instant events
  const char* name;      ///< Zone: its name (static storage); nullptr for the other kinds
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

class TraceBuffer {
 public:
  /// `capacity` events (0: tracing off, nothing allocated).
  /// Errors: Error (InvalidConfig) naming Config::trace_events_per_worker when the memory
  /// cannot be had (trace.cpp).
  explicit TraceBuffer(std::size_t capacity)
      : events_(capacity != 0 ? allocate(capacity) : nullptr), capacity_(capacity) {}

  /// Appends an event. Owner thread only; lock-free, no allocation.
  void record(TraceKind kind, std::uint64_t start_ns, std::uint64_t end_ns, std::uint32_t id,
              const char* name = nullptr) noexcept {
    // relaxed: single writer reads its own last store.
    const std::size_t n = count_.load(std::memory_order_relaxed);
    if (n == capacity_) {
      // relaxed: a statistic.
      dropped_.store(dropped_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      return;
    }
    events_[n] = TraceEvent{start_ns, end_ns, name, id, kind};
    count_.store(n + 1, std::memory_order_release);  // release: pairs with the reader's acquire
  }

  /// Events recorded so far (acquire: pairs with record's release store; they are readable).
  [[nodiscard]] std::size_t size() const noexcept { return count_.load(std::memory_order_acquire); }
  [[nodiscard]] const TraceEvent& operator[](std::size_t i) const noexcept { return events_[i]; }
  [[nodiscard]] std::uint64_t dropped() const noexcept {
    return dropped_.load(std::memory_order_relaxed);  // relaxed: a statistic
  }

 private:
  static std::unique_ptr<TraceEvent[]> allocate(std::size_t capacity);

  std::unique_ptr<TraceEvent[]> events_;
  std::size_t capacity_;
  /// Events recorded, 0..capacity_. Single writer (the worker's thread): stored with release
  /// after the event; size() loads it with acquire (pairs), so that many events are readable.
  std::atomic<std::size_t> count_{0};
  /// Events refused because the buffer was full. Relaxed: a statistic, pairs with nothing.
  std::atomic<std::uint64_t> dropped_{0};
};

/// The track of the threads that are not workers of a job system (usually the main thread):
/// its zones and frame marks. Any thread may record, under the mutex (these events are a few
/// per frame, not per job). The buffer is allocated on first use.
class ExternalTrack {
 public:
  /// Appends an event (dropped and counted when the buffer is full). `capacity`: the buffer's
  /// size in events, used on first use. Errors: Error (InvalidConfig) when it cannot be had.
  void record(std::size_t capacity, TraceKind kind, std::uint64_t start_ns, std::uint64_t end_ns,
              std::uint32_t id, const char* name) {
    std::lock_guard lock(mutex_);
    if (buffer_ == nullptr) buffer_ = std::make_unique<TraceBuffer>(capacity);
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

/// Records an event on the non-worker track of the first live job system with tracing on (the
/// registry's order; diagnostics.cpp). Nothing when there is none or its buffer cannot be had.
void record_on_external_track(TraceKind kind, std::uint64_t start_ns, std::uint64_t end_ns,
                              std::uint32_t id, const char* name) noexcept;

}  // namespace fiberjob::detail
