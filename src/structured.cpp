// The out-of-line halves of the structured-concurrency layer (fiberjob/structured.hpp): its
// misuse errors, and the flat stop request of nested when_any calls.

#include "fiberjob/structured.hpp"

#include <string>
#include <utility>
#include <vector>

#include "fiber_switch.hpp"
#include "fiberjob/error.hpp"

namespace fiberjob::detail {

namespace {
/// The calling thread's request_stop_flat: whether one runs, and the stops it still owes.
/// Used only within one request_stop_flat call (stop callbacks never suspend), so never
/// across a suspension.
struct FlatStops {
  bool running = false;
  std::vector<std::stop_source> queued;
};
thread_local FlatStops t_flat_stops;
}  // namespace

void request_stop_flat(std::stop_source& source) noexcept {
  FlatStops& flat = t_flat_stops;
  if (flat.running) {
    try {
      flat.queued.push_back(source);  // a copy: the stop state outlives a finished race
      return;
    } catch (...) {  // no memory: request it in place (one level deeper)
      source.request_stop();
      return;
    }
  }
  flat.running = true;
  source.request_stop();
  while (!flat.queued.empty()) {
    std::stop_source next = std::move(flat.queued.back());
    flat.queued.pop_back();
    next.request_stop();  // may queue more
  }
  flat.running = false;
}

void check_sync_wait_caller() {
  const Fiber* self = current_fiber();
  // Any job is rejected, also one an attached thread runs (an affine job, one run_pending
  // runs, a child its wait runs inline): on the thread's own stack runs_job_segment tells it
  // by the job's counter, as Fiber::pinned does not. That stack outside a job may block:
  // JobSystem::wait runs jobs on it meanwhile.
  if (self != nullptr && runs_job_segment(*self)) {
    throw Error(ErrorCode::BlockingCallInJob,
                "fiberjob: sync_wait called from a job: it would block the job's worker "
                "thread. In a coroutine job co_await the task (or co_await "
                "when_all(ctx, ...)); in plain job code start it with a JobHandle<T> and "
                "call get(), which suspends only the job");
  }
}

void throw_when_any_empty() {
  throw Error(ErrorCode::InvalidArgument,
              "fiberjob: when_any over no task: there is no first task to finish; pass at "
              "least one");
}

void throw_empty_task(const char* call) {
  throw Error(ErrorCode::InvalidArgument,
              std::string("fiberjob: ") + call +
                  " was given an empty Task (moved from, or released): there is no coroutine "
                  "to run. Pass each task once; a task is moved into the call that runs it");
}

void throw_job_handle_empty(const char* call) {
  throw Error(ErrorCode::CounterMisuse,
              std::string("fiberjob: ") + call +
                  " on a JobHandle that holds no result: it was never spawned, or its result "
                  "(value or exception) was taken already by get() or co_await. Spawn a job "
                  "on the handle first, and take each result once");
}

void throw_job_handle_busy() {
  throw Error(ErrorCode::CounterMisuse,
              "fiberjob: JobHandle::spawn while the handle's previous job has not ended; "
              "await the handle (or call get()) first, or use another handle");
}

}  // namespace fiberjob::detail
