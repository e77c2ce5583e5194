// Registry of live schedulers and the hang report (write_diagnostics).

#include "fiberjob/diagnostics.hpp"

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <vector>

#include "fiberjob/task.hpp"
#include "fiberjob/trace.hpp"

#include "scheduler.hpp"

namespace fiberjob {
namespace detail {

/// For debuggers (scripts/gdb/fiberjob.py): the live job systems (the first kDebugSchedulers
/// of them), mirrored from the registry under its mutex. Plain globals, so that gdb finds them
/// by name on a live process and on a core file.
constexpr std::size_t kDebugSchedulers = 64;
extern const Scheduler* g_debug_schedulers[kDebugSchedulers];
extern std::uint32_t g_debug_scheduler_count;

namespace {

std::mutex g_registry_mutex;
std::vector<const Scheduler*>& registry() {
  static std::vector<const Scheduler*> schedulers;  // guarded by g_registry_mutex
  return schedulers;
}

const char* phase_name(WorkerPhase phase) noexcept {
  switch (phase) {
    case WorkerPhase::Starting:
      return "starting";
    case WorkerPhase::Running:
      return "running a job";
    case WorkerPhase::Searching:
      return "searching";
    case WorkerPhase::Parked:
      return "parked";
    case WorkerPhase::Stopped:
      return "stopped";
  }
  return "?";
}

/// Writes the line of one wait: "waits on counter 0x..." or "waits on Event 0x..." (a fiber's
/// or an attached thread's own stack), or nothing and false when it waits on neither.
bool describe_waited_object(std::FILE* out, const Fiber& fiber) noexcept {
  // Only pointers: the counter or primitive may be dead by now (the fiber was resumed, its
  // wait returned and the object went out of scope since the load), so they are never
  // dereferenced. relaxed loads: a diagnostic snapshot, pairs with nothing.
  const Counter* counter = fiber.waiting_on.load(std::memory_order_relaxed);
  const void* primitive = fiber.waiting_on_primitive.load(std::memory_order_relaxed);
  if (counter != nullptr) {
    std::fprintf(out, "waits on counter %p\n", static_cast<const void*>(counter));
    return true;
  }
  if (primitive != nullptr) {
    const char* what = fiber.waiting_on_what.load(std::memory_order_relaxed);
    std::fprintf(out, "waits on %s %p\n", what != nullptr ? what : "a synchronisation primitive",
                 primitive);
    return true;
  }
  return false;
}

/// The lines of a slot for an attached thread: free, or the attached thread's phase and
/// affine inbox, and, when its own stack is suspended in a wait, what that wait is for (a job
/// run there by run_pending or inline by a wait, or the thread's own JobSystem::wait).
void describe_slot(std::FILE* out, const Worker& slot) noexcept {
  // relaxed loads throughout: a diagnostic snapshot, pairs with nothing.
  if (!slot.slot_taken.load(std::memory_order_relaxed)) {
    std::fprintf(out,
                 "  worker %u: slot for an attached thread (Config::attachable_threads), free\n",
                 slot.index);
    return;
  }
  std::fprintf(
      out,
      "  worker %u: attached thread, %s, jobs run %llu, queued H/N/L %lld/%lld/%lld, affine "
      "inbox: %lld woken, %lld not started\n",
      slot.index, phase_name(slot.phase.load(std::memory_order_relaxed)),
      static_cast<unsigned long long>(slot.stats.jobs_run.load(std::memory_order_relaxed)),
      static_cast<long long>(slot.deques[0].size_approx()),
      static_cast<long long>(slot.deques[1].size_approx()),
      static_cast<long long>(slot.deques[2].size_approx()),
      static_cast<long long>(slot.inbox->woken.size.load(std::memory_order_relaxed)),
      static_cast<long long>(slot.inbox->fresh.size.load(std::memory_order_relaxed)));
  // The job run there that waits (affine, or run inline by a wait), by its JobOptions::name.
  // relaxed: a diagnostic snapshot (Fiber::job_name), pairs with nothing.
  const char* name = slot.native.job_name.load(std::memory_order_relaxed);
  std::fprintf(out, "  attached thread of worker %u, on its own stack%s%s%s: ", slot.index,
               name != nullptr ? " (job '" : "", name != nullptr ? name : "",
               name != nullptr ? "')" : "");
  if (!describe_waited_object(out, slot.native)) {
    std::fputs("in no wait (outside the job system, or running a job)\n", out);
  }
}

/// Mirrors registry() into g_debug_schedulers (g_registry_mutex held).
void mirror_for_debuggers() noexcept {
  const auto& schedulers = registry();
  const std::size_t count = std::min(schedulers.size(), kDebugSchedulers);
  std::copy_n(schedulers.begin(), count, g_debug_schedulers);
  g_debug_scheduler_count = static_cast<std::uint32_t>(count);
}

}  // namespace

const Scheduler* g_debug_schedulers[kDebugSchedulers] = {};
std::uint32_t g_debug_scheduler_count = 0;

void register_scheduler(const Scheduler* scheduler) {
  std::lock_guard lock(g_registry_mutex);
  registry().push_back(scheduler);
  mirror_for_debuggers();
  if (scheduler->tracing()) g_traced_systems.fetch_add(1);
  if (scheduler->config().track_coroutine_jobs) g_tracking_systems.fetch_add(1);
  if (scheduler->config().capture_await_chains) g_capturing_systems.fetch_add(1);
}

void unregister_scheduler(const Scheduler* scheduler) noexcept {
  std::lock_guard lock(g_registry_mutex);
  auto& schedulers = registry();
  schedulers.erase(std::remove(schedulers.begin(), schedulers.end(), scheduler), schedulers.end());
  mirror_for_debuggers();
  if (scheduler->tracing()) g_traced_systems.fetch_sub(1);
  if (scheduler->config().track_coroutine_jobs) g_tracking_systems.fetch_sub(1);
  if (scheduler->config().capture_await_chains) g_capturing_systems.fetch_sub(1);
}

void record_on_external_track(TraceKind kind, std::uint64_t start_ns, std::uint64_t end_ns,
                              std::uint32_t id, const char* name) noexcept {
  std::lock_guard lock(g_registry_mutex);  // keeps the job system alive while recording
  for (const Scheduler* scheduler : registry()) {
    if (!scheduler->tracing()) continue;
    try {
      scheduler->external_track().record(scheduler->config().trace_events_per_worker,
                                         scheduler->config().trace_ring_frames != 0, kind, start_ns,
                                         end_ns, id, name);
    } catch (...) {  // the track's buffer could not be allocated: the event is lost
    }
    return;
  }
}

bool scheduler_registered(const Scheduler* scheduler) noexcept {
  std::lock_guard lock(g_registry_mutex);
  const auto& schedulers = registry();
  return std::find(schedulers.begin(), schedulers.end(), scheduler) != schedulers.end();
}

void Scheduler::describe(std::FILE* out) const noexcept {
  // relaxed loads throughout: a diagnostic snapshot, pairs with nothing.
  std::fprintf(out, "fiberjob: job system %p: %zu workers, stopping=%d, parked waiters=%u\n",
               static_cast<const void*>(this), workers_.size(),
               stopping_.load(std::memory_order_relaxed) ? 1 : 0, idle_.waiters());
  std::fprintf(out, "  injector: %s\n", injector_.empty_approx() ? "empty" : "holds jobs");
  if (config_.attachable_threads != 0) {
    std::fprintf(out, "  resume_on_any hops queued for the worker threads: %lld\n",
                 static_cast<long long>(worker_hops_.size.load(std::memory_order_relaxed)));
  }
  for (const auto& worker : workers_) {
    if (worker->is_slot) {
      describe_slot(out, *worker);
      continue;
    }
    std::fprintf(
        out,
        "  worker %u: %s, jobs run %llu, queued H/N/L %lld/%lld/%lld, yielded %lld, next %s, "
        "chunk %s\n",
        worker->index, phase_name(worker->phase.load(std::memory_order_relaxed)),
        static_cast<unsigned long long>(worker->stats.jobs_run.load(std::memory_order_relaxed)),
        static_cast<long long>(worker->deques[0].size_approx()),
        static_cast<long long>(worker->deques[1].size_approx()),
        static_cast<long long>(worker->deques[2].size_approx()),
        static_cast<long long>(worker->yielded.size_approx()),
        worker->next.load(std::memory_order_relaxed) != 0 ? "a woken fiber" : "none",
        worker->chunk.load(std::memory_order_relaxed) != 0 ? "woken waiters not yet resumed"
                                                           : "none");
  }
  std::fprintf(out, "  fibers: %u in use of %u made (peak %u; %u warm, at most %u)\n",
               fibers_.in_use(), fibers_.created(), fibers_.high_water(), fibers_.warm_count(),
               fibers_.max_count());
  if (config_.track_coroutine_jobs) {
    const std::size_t jobs = describe_coroutine_jobs(out, *this);
    std::fprintf(out, "  coroutine jobs alive (Config::track_coroutine_jobs): %zu\n", jobs);
  } else if (const std::uint64_t alive = stats().coroutine_jobs_alive; alive != 0) {
    std::fprintf(out,
                 "  coroutine jobs alive: %llu, not listed: Config::track_coroutine_jobs lists "
                 "each with its await chain and what it waits on\n",
                 static_cast<unsigned long long>(alive));
  }
  for_each_pool([out](const FiberPool& pool) {
    if (pool.stack_class() != 0) {
      std::fprintf(out,
                   "  stack class '%s': %u fibers in use of %u made (at most %u), %zu jobs "
                   "waiting for one\n",
                   pool.class_name(), pool.in_use(), pool.created(), pool.max_count(),
                   pool.parked_jobs());
    }
    pool.for_each_suspended([out](const Fiber& fiber) { describe_wait(out, fiber); });
  });
}

void describe_wait(std::FILE* out, const Fiber& fiber) noexcept {
  // relaxed: a diagnostic snapshot (Fiber::job_name), pairs with nothing.
  const char* name = fiber.job_name.load(std::memory_order_relaxed);
  std::fprintf(out, "  fiber #%u%s%s%s: ", fiber.index, name != nullptr ? " (job '" : "",
               name != nullptr ? name : "", name != nullptr ? "')" : "");
  if (!describe_waited_object(out, fiber)) std::fputs("suspended (yield or hop)\n", out);
}

}  // namespace detail

void write_diagnostics(std::FILE* out) noexcept {
  std::lock_guard lock(detail::g_registry_mutex);
  if (detail::registry().empty()) std::fputs("fiberjob: no live job system\n", out);
  for (const detail::Scheduler* scheduler : detail::registry()) scheduler->describe(out);
  std::fflush(out);
}

}  // namespace fiberjob
