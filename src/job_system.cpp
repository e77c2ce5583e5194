// JobSystem, Context and this_fiber: the public entry points, thin over the Scheduler.

#include "fiberjob/job_system.hpp"

#include "config_check.hpp"
#include "counter_access.hpp"
#include "fiber_switch.hpp"
#include "fiberjob/error.hpp"
#include "fiberjob/this_fiber.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace fiberjob {

JobSystem::JobSystem(const Config& config)
    : impl_(std::make_unique<detail::Scheduler>(*this, detail::validate_config(config))) {}

JobSystem::~JobSystem() = default;

void JobSystem::wait(Counter& counter) {
  if (detail::current_fiber() != nullptr) {
    this_fiber::wait(counter);
    return;
  }
  detail::CounterAccess::wait_on_thread(counter);
  detail::CounterAccess::rethrow_if_error(counter);
}

Stats JobSystem::stats() const noexcept { return impl_->stats(); }

const Config& JobSystem::config() const noexcept { return impl_->config(); }

std::size_t JobSystem::worker_count() const noexcept { return impl_->worker_count(); }

std::size_t Context::worker_index() const noexcept { return fiber_->worker->index; }

JobSystem& Context::system() const noexcept { return fiber_->scheduler->owner(); }

namespace this_fiber {

namespace {
detail::Fiber* require_fiber(const char* call) {
  detail::Fiber* self = detail::current_fiber();
  if (self == nullptr) {
    throw Error(ErrorCode::NotOnFiber,
                std::string("fiberjob: ") + call +
                    " was called outside a job (not on a fiberjob fiber); on a plain thread use "
                    "JobSystem::wait(counter), which parks the thread");
  }
  return self;
}
}  // namespace

void wait(Counter& counter) {
  detail::Fiber* self = require_fiber("this_fiber::wait");
  if (&counter == self->job_counter) {
    throw Error(ErrorCode::CounterMisuse,
                "fiberjob: this_fiber::wait on the counter the running job itself signals: it "
                "reaches zero only after this job ends, so the wait could never return. Wait "
                "on a counter of the jobs you spawned instead");
  }
  if (detail::CounterAccess::load_settled(counter) != 0) {
    self->node.kind = detail::WaitNode::Kind::Fiber;
    self->node.fiber = self;
    self->node.next = nullptr;
    if (detail::suspend(self, detail::Handoff::Action::LinkToCounter, &counter)) {
      detail::CounterAccess::wait_for_linker(self->node);
    } else {
      detail::run_until_done(self, counter);  // no free fiber to suspend into
    }
  }
  detail::CounterAccess::rethrow_if_error(counter);
}

void yield() {
  detail::Fiber* self = require_fiber("this_fiber::yield");
  // Without a free fiber the yield is skipped: the job goes on, and the ready work it found
  // stays queued for the other workers.
  detail::suspend(self, detail::Handoff::Action::Reschedule, nullptr);
}

bool on_fiber() noexcept { return detail::current_fiber() != nullptr; }

}  // namespace this_fiber

namespace detail {

Scheduler& scheduler_of(const Fiber& fiber) noexcept { return *fiber.scheduler; }

JobRecord* acquire_record(Scheduler& scheduler) {
  Worker* worker = current_worker();
  if (worker != nullptr && worker->scheduler == &scheduler) {
    return scheduler.records().acquire(worker->records);
  }
  return scheduler.records().acquire_shared();
}

void release_unused_record(Scheduler& scheduler, JobRecord* record) noexcept {
  Worker* worker = current_worker();
  if (worker != nullptr && worker->scheduler == &scheduler) {
    scheduler.records().release(worker->records, record);
  } else {
    scheduler.records().release_shared(record);
  }
}

void discard_records(Scheduler& scheduler, std::span<JobRecord* const> records) noexcept {
  for (JobRecord* record : records) {
    record->invoke(*record, nullptr);  // destroys the callable without running it
    release_unused_record(scheduler, record);
  }
}

void submit(Scheduler& scheduler, Counter& counter, std::span<JobRecord* const> records,
            Priority priority) {
  if (records.empty()) return;
  try {
    counter.add(static_cast<std::int64_t>(records.size()));
  } catch (...) {
    discard_records(scheduler, records);
    throw;
  }
  Worker* worker = current_worker();
  if (worker != nullptr && worker->scheduler == &scheduler) {
    for (JobRecord* record : records) push_local(*worker, Job::run(record, priority));
    scheduler.notify(static_cast<int>(records.size()));
    return;
  }
  constexpr std::size_t kChunk = 64;
  Job jobs[kChunk];
  for (std::size_t done = 0; done < records.size();) {
    std::size_t n = 0;
    for (; n < kChunk && done + n < records.size(); ++n) {
      jobs[n] = Job::run(records[done + n], priority);
    }
    scheduler.inject_bulk(jobs, n, priority, nullptr);
    done += n;
  }
}

}  // namespace detail
}  // namespace fiberjob
