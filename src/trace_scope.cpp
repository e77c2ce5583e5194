// User zones (FIBERJOB_TRACE_SCOPE) and frame marks: where their trace events go.

#include <algorithm>

#include "fiberjob/job_system.hpp"
#include "fiberjob/trace.hpp"

#include "fiber.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace fiberjob {
namespace detail {

std::atomic<int> g_traced_systems{0};

std::uint64_t trace_scope_begin() noexcept { return trace_now_ns(); }

void trace_scope_end(const char* name, std::uint64_t start_ns) noexcept {
  const std::uint64_t now = trace_now_ns();
  if (Worker* worker = current_worker(); worker != nullptr) {
    if (!worker->scheduler->tracing()) return;
    const Fiber* fiber = worker->current;
    // Clipped to the fiber's current run segment, so that the zone nests in the job's segment
    // on this track (its earlier segments ran elsewhere or between other jobs).
    const std::uint64_t start =
        fiber != nullptr ? std::max(start_ns, fiber->segment_start_ns) : start_ns;
    worker->trace.record(TraceKind::Zone, start, now, fiber != nullptr ? fiber->index : 0, name);
    return;
  }
  record_on_external_track(TraceKind::Zone, start_ns, now, 0, name);
}

void trace_spawn(Worker& worker, const void* record) noexcept {
  const Fiber* fiber = worker.current;
  if (fiber == nullptr) return;
  // Inside a job's recorded slice: a pooled fiber running a job (not the dispatch loop between
  // jobs), or an attached thread's own stack inside a job run there (affine, or run inline by
  // a wait: runs_job_segment), not its own code outside jobs, which runs in no slice.
  const FiberState state = state_of(*fiber);
  const bool in_job =
      state == FiberState::Native ? runs_job_segment(*fiber) : state == FiberState::Running;
  if (!in_job) return;
  const std::uint64_t now = trace_now_ns();
  worker.trace.record(TraceKind::SpawnFlow, now, reinterpret_cast<std::uintptr_t>(record),
                      fiber->index);
}

}  // namespace detail

void JobSystem::trace_frame_mark(std::uint64_t frame) noexcept {
  if (!impl_->tracing()) return;
  const std::uint64_t now = detail::trace_now_ns();
  try {
    impl_->external_track().record(
        impl_->config().trace_events_per_worker, impl_->config().trace_ring_frames != 0,
        detail::TraceKind::FrameMark, now, now, static_cast<std::uint32_t>(frame), nullptr);
  } catch (...) {  // the track's buffer could not be allocated: the mark is lost, nothing else
  }
}

}  // namespace fiberjob
