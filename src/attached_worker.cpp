// AttachedWorker: a plain thread joins a JobSystem as one of its workers (Scheduler::attach).

#include "fiberjob/attached_worker.hpp"

#include "fiberjob/job_system.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace fiberjob {

AttachedWorker::AttachedWorker(JobSystem& system)
    : slot_(detail::scheduler_of(system.context()).attach()) {}

AttachedWorker::~AttachedWorker() { slot_->scheduler->detach(*slot_); }

std::size_t AttachedWorker::index() const noexcept { return slot_->index; }

}  // namespace fiberjob
