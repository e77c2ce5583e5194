// AttachedWorker: a plain thread joins a JobSystem as one of its workers (Scheduler::attach).

#include "fiberjob/attached_worker.hpp"

#include "fiberjob/job_system.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace fiberjob {

AttachedWorker::AttachedWorker(JobSystem& system)
    : slot_(detail::scheduler_of(system.context()).attach()),
      // relaxed: our own thread opened the gate (Scheduler::attach).
      generation_(detail::gate_generation(slot_->inbox->gate.load(std::memory_order_relaxed))) {}

AttachedWorker::~AttachedWorker() { slot_->scheduler->detach(*slot_); }

std::size_t AttachedWorker::index() const noexcept { return slot_->index; }

std::size_t AttachedWorker::run_pending() { return detail::run_pending_affine(*slot_); }

}  // namespace fiberjob
