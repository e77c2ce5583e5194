// Attached threads (AttachedWorker): a plain thread takes a worker slot, runs jobs inline on its
// own stack while it waits, and gives the slot back.

#include <pthread.h>

#include <string>

#include "fiberjob/detail/die.hpp"
#include "fiberjob/error.hpp"
#include "scheduler.hpp"
#include "stack_guard.hpp"

namespace fiberjob::detail {
namespace {

/// Records the calling thread's stack in `native` (stack_bottom, stack_size), so that work run
/// inline on it is bounded by its headroom (has_stack_headroom). Unknown bounds stay nullptr.
void set_thread_stack_bounds(Fiber& native) noexcept {
  pthread_attr_t attributes;
  if (pthread_getattr_np(pthread_self(), &attributes) != 0) return;
  void* bottom = nullptr;
  std::size_t size = 0;
  if (pthread_attr_getstack(&attributes, &bottom, &size) == 0) {
    native.stack_bottom = bottom;
    native.stack_size = size;
  }
  pthread_attr_destroy(&attributes);
}

}  // namespace

Worker* Scheduler::attach() {
  if (current_worker() != nullptr) {
    throw Error(ErrorCode::AttachMisuse,
                "fiberjob: AttachedWorker on a thread that is a worker already (a worker thread, "
                "a job, or an attached thread); attach plain threads only, once");
  }
  for (auto& worker : workers_) {
    bool taken = false;
    // acquire: pairs with the release store in detach, so the previous attached thread's use
    // of the slot (its caches, deque ownership) happens before ours.
    // relaxed: a first look that skips taken slots; the CAS (acquire) pairs with detach.
    if (worker->is_slot && !worker->slot_taken.load(std::memory_order_relaxed) &&
        worker->slot_taken.compare_exchange_strong(taken, true, std::memory_order_acquire,
                                                   std::memory_order_relaxed)) {
      Worker& slot = *worker;
      try {
        install_alternate_signal_stack();
      } catch (...) {
        slot.slot_taken.store(false, std::memory_order_release);  // release: as in detach
        throw;
      }
      san_adopt_thread(slot.native.san);
      set_thread_stack_bounds(slot.native);
      slot.current = &slot.native;
      // The thread's own code runs on the slot from now: its zones are clipped to this time
      // (trace_scope_end), not to a time before the attach.
      if (tracing()) slot.native.segment_start_ns = trace_now_ns();
      set_current_worker(&slot);
      open_affine(slot);
      return &slot;
    }
  }
  throw Error(ErrorCode::AttachMisuse,
              "fiberjob: AttachedWorker: all " + std::to_string(config_.attachable_threads) +
                  " slot(s) for attached threads are taken; raise Config::attachable_threads");
}

void Scheduler::detach(Worker& slot) noexcept {
  if (current_worker() != &slot || slot.current != &slot.native) {
    die_with(
        "fiberjob: an AttachedWorker was destroyed on another thread than the one that created "
        "it, or from inside a job; destroy it on its own thread, outside jobs.");
  }
  close_affine(slot);            // runs the affine jobs left: none is lost
  flush_deferred_signals(slot);  // none are left after a wait; kept for robustness
  set_current_worker(nullptr);
  remove_alternate_signal_stack();
  // release: pairs with the acquire CAS in attach and load in stop_workers.
  slot.slot_taken.store(false, std::memory_order_release);
}

}  // namespace fiberjob::detail
