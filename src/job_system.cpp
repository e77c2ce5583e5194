// JobSystem, Context and this_fiber: the public entry points, thin over the Scheduler.

#include "fiberjob/job_system.hpp"

#include <cerrno>
#include <cstdio>
#include <string>
#include <system_error>

#include "config_check.hpp"
#include "counter_wait_list.hpp"
#include "fiber_switch.hpp"
#include "fiberjob/error.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace fiberjob {

JobSystem::JobSystem(const Config& config)
    : impl_(std::make_unique<detail::Scheduler>(*this, detail::validate_config(config))) {}

JobSystem::~JobSystem() {
  // Jobs suspended forever keep wait nodes (in fiber records and coroutine frames that point
  // into the scheduler) linked into counters that outlive us: keep the scheduler for them.
  if (!impl_->shut_down()) detail::Scheduler::keep_forever(std::move(impl_));
}

void JobSystem::wait(Counter& counter) {
  if (detail::Fiber* self = detail::current_fiber()) {
    // A job with a stop token: a wait that need not suspend (the counter at zero) completes
    // normally also after a stop, as this_fiber::wait does (docs/api.md, Errors, Cancelled).
    if (self->job_stop == nullptr || !counter.done()) {
      detail::throw_if_job_stopped(self, "JobSystem::wait");
      const bool check_error = detail::wait_on_fiber_stoppable(self, counter);
      detail::throw_if_job_stopped(self, "JobSystem::wait");
      // Woken by the last signal, the counter may be gone: look at it only when told to.
      if (!check_error) return;
    }
  } else if (!detail::CounterWaitList::wait_on_thread(counter)) {
    return;  // as above
  }
  detail::CounterWaitList::rethrow_if_error(counter);
}

void JobSystem::write_trace(const std::string& path) const {
  if (!impl_->tracing()) {
    throw Error(ErrorCode::InvalidConfig,
                "fiberjob: JobSystem::write_trace needs Config::tracing = true");
  }
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (file == nullptr) {
    throw std::system_error(errno, std::generic_category(),
                            "fiberjob: cannot open trace file '" + path + "'");
  }
  impl_->write_trace(file);
  const bool failed = std::ferror(file) != 0;
  if (std::fclose(file) != 0 || failed) {
    throw std::system_error(errno, std::generic_category(),
                            "fiberjob: cannot write trace file '" + path + "'");
  }
}

Stats JobSystem::stats() const noexcept { return impl_->stats(); }

const Config& JobSystem::config() const noexcept { return impl_->config(); }

std::size_t JobSystem::worker_count() const noexcept { return impl_->worker_count(); }

std::size_t JobSystem::current_worker_index() const noexcept {
  const detail::Worker* worker = detail::current_worker_of(*impl_);
  return worker != nullptr ? worker->index : Context::kNotAWorker;
}

Context& JobSystem::context() noexcept { return impl_->context(); }

std::size_t Context::worker_index() const noexcept {
  const detail::Worker* worker = detail::current_worker_of(scheduler_);
  return worker != nullptr ? worker->index : kNotAWorker;
}

JobSystem& Context::system() const noexcept { return scheduler_.owner(); }

namespace detail {

Scheduler& scheduler_of(Context& ctx) noexcept { return ContextAccess::scheduler(ctx); }

JobRecord* acquire_record(Scheduler& scheduler) {
  if (Worker* worker = current_worker_of(scheduler)) {
    return scheduler.records().acquire(worker->records);
  }
  return scheduler.records().acquire_shared();
}

void release_unused_record(Scheduler& scheduler, JobRecord* record) noexcept {
  if (Worker* worker = current_worker_of(scheduler)) {
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

void check_stack_class(const Scheduler& scheduler, std::uint8_t stack_class) {
  if (stack_class <= scheduler.config().stack_classes.size()) return;
  throw Error(ErrorCode::InvalidArgument,
              "fiberjob: JobOptions::stack_class = " + std::to_string(stack_class) +
                  " names no stack class: this job system has " +
                  std::to_string(scheduler.config().stack_classes.size()) +
                  " in Config::stack_classes (class i + 1 is stack_classes[i]; 0 is the "
                  "default)");
}

namespace {

/// submit_one_job's other cases on a worker thread, out of line: a spawn on a worker of a
/// system that traces (the spawn's flow arrow starts here), or on a worker of another system.
[[gnu::noinline]] void submit_unusual(Scheduler& scheduler, Worker& worker, const JobRecord* record,
                                      Job job) {
  if (worker.scheduler != &scheduler) {
    scheduler.inject(job, nullptr);  // wakes a worker
    return;
  }
  if (scheduler.tracing()) trace_spawn(worker, record);
  push_local(worker, job);
  scheduler.notify_from_worker(1);
}

/// submit_one's body, inlined into both entry points so that the common spawn builds its job
/// word with a constant stack class.
[[gnu::always_inline]] inline void submit_one_job(Scheduler& scheduler, Counter& counter,
                                                  JobRecord* record, Priority priority,
                                                  std::uint8_t stack_class) {
  try {
    counter.add(1);
  } catch (...) {
    discard_records(scheduler, std::span<JobRecord* const>(&record, 1));
    throw;
  }
  CounterWaitList::set_scheduler_hint(counter, &scheduler);
  const Job job = Job::run(record, priority, stack_class);
  Worker* const worker = current_worker();
  if (worker == nullptr) {           // a plain thread
    scheduler.inject(job, nullptr);  // wakes a worker
    return;
  }
  // One compare for the usual spawn, from a worker of this system, which does not trace
  // (Worker::untraced_scheduler): no trace test of its own.
  if (worker->untraced_scheduler == &scheduler) [[likely]] {
    push_local(*worker, job);
    scheduler.notify_from_worker(1);
    return;
  }
  submit_unusual(scheduler, *worker, record, job);
}

}  // namespace

void submit_one(Scheduler& scheduler, Counter& counter, JobRecord* record, Priority priority) {
  submit_one_job(scheduler, counter, record, priority, 0);
}

void submit_one_in_class(Scheduler& scheduler, Counter& counter, JobRecord* record,
                         Priority priority, std::uint8_t stack_class) {
  submit_one_job(scheduler, counter, record, priority, stack_class);
}

void publish(Scheduler& scheduler, Counter& counter, std::span<JobRecord* const> records,
             Priority priority, std::uint8_t stack_class) noexcept {
  if (records.empty()) return;
  CounterWaitList::set_scheduler_hint(counter, &scheduler);
  if (Worker* worker = current_worker_of(scheduler)) {
    for (JobRecord* record : records) {
      if (scheduler.tracing()) trace_spawn(*worker, record);
      push_local(*worker, Job::run(record, priority, stack_class));
    }
    scheduler.notify_from_worker(static_cast<int>(records.size()));
    return;
  }
  constexpr std::size_t kChunk = 64;
  std::uintptr_t jobs[kChunk];  // Job::bits(); uninitialised (no 512-byte clear per spawn)
  for (std::size_t done = 0; done < records.size();) {
    std::size_t n = 0;
    for (; n < kChunk && done + n < records.size(); ++n) {
      jobs[n] = Job::run(records[done + n], priority, stack_class).bits();
    }
    scheduler.inject_bulk(jobs, n, priority, nullptr);
    done += n;
  }
}

}  // namespace detail
}  // namespace fiberjob
