// Thread-affine jobs: the attached thread's inbox (push, take, give back), its gate, which
// closes it on detach without losing a job, run_pending, and the resume_on / resume_on_any hops.

#include <sched.h>

#include <string>

#include "affine_inbox.hpp"
#include "await_chain_access.hpp"
#include "counter_wait_list.hpp"
#include "fiber_switch.hpp"
#include "fiberjob/attached_worker.hpp"
#include "fiberjob/context.hpp"
#include "fiberjob/detail/die.hpp"
#include "fiberjob/error.hpp"
#include "scheduler.hpp"
#include "worker.hpp"

namespace fiberjob {
namespace detail {
namespace {

constexpr std::uint64_t kGenerationStep = std::uint64_t{1} << 32;
constexpr std::uint64_t kInsideMask = kGenerationStep - 1;

/// Fills a Coroutine node for `coroutine` from the calling job (its stop token, counter,
/// JobLocal values and priority travel with it, as for a yield) and returns the priority.
Priority fill_hop_node(WaitNode& node, Scheduler& scheduler, std::coroutine_handle<> coroutine) {
  const Fiber* self = current_fiber();
  node.kind = WaitNode::Kind::Coroutine;
  node.coroutine_address = coroutine.address();
  node.scheduler = &scheduler;
  node.job_stop = self != nullptr ? self->job_stop : nullptr;
  node.job_counter = self != nullptr ? self->job_counter : nullptr;
  node.job_locals = self != nullptr ? self->job_locals : nullptr;
  const Priority priority = self != nullptr ? self->priority : Priority::Normal;
  node.priority = static_cast<std::uint8_t>(priority);
  note_task_wait(node, nullptr, nullptr);  // no wait; the resume names the segment by the job
  return priority;
}

/// Slot thread only: the oldest job of `lane`, or an empty Job (see CountedQueue::take).
/// Marks a Run or ResumeCoroutine job as taken.
Job take_from(AffineInbox& inbox, CountedQueue& lane) noexcept {
  const std::uintptr_t bits = lane.take();
  if (bits == 0) return {};
  const Job job = Job::from_bits(bits);
  if (job.kind() != Job::Kind::Resume) inbox.taken = bits;
  return job;
}

/// run_pending's step: runs `job` (from the inbox) on the attached thread's own stack.
void run_on_native(Worker& slot, Job job) noexcept {
  if (job.kind() == Job::Kind::Resume) {
    // An affine plain job's pooled fiber, woken: let it run its job on. Its arrival makes our
    // stack ready again (Reschedule of a pinned stack: wake_pinned), and its next suspension or
    // the end of its job switches back here, first thing (find_job looks at native_ready first).
    switch_to(&slot.native, job.fiber(), Handoff::Action::Reschedule);
    return;
  }
  claim_affine(slot.inbox.get(), job);
  run_affine(&slot.native, job);
}

/// run_pending's step: runs the woken jobs (fibers and hops) queued in `slot`'s inbox now, on
/// the attached thread's own stack; those woken meanwhile wait for the next step. Returns how
/// many it ran.
std::size_t run_woken_on_native(Worker& slot) {
  AffineInbox& inbox = *slot.inbox;
  std::size_t ran = 0;
  // relaxed: see CountedQueue::size.
  for (std::int64_t n = inbox.woken.size.load(std::memory_order_relaxed); n > 0; --n) {
    const Job job = take_from(inbox, inbox.woken);
    if (!job) break;
    run_on_native(slot, job);
    ++ran;
  }
  return ran;
}

}  // namespace

AffineEntry::AffineEntry(Worker& slot, std::uint32_t generation) : slot_(slot) {
  // relaxed: the RMW's place in the gate's modification order alone decides whether we are in
  // before the detaching thread's close (it then waits for us) or after it (we see the new
  // generation); the close's wait gets its order from our release in the destructor.
  const std::uint64_t before = slot.inbox->gate.fetch_add(1, std::memory_order_relaxed);
  if (gate_generation(before) != generation) {
    slot.inbox->gate.fetch_sub(1, std::memory_order_relaxed);  // relaxed: we queued nothing
    throw Error(ErrorCode::AttachMisuse,
                "fiberjob: a thread-affine job (AttachedThread::spawn, AttachedWorker::spawn or "
                "co_await ctx.resume_on) was sent to a thread that has detached (its "
                "AttachedWorker was destroyed); nothing was queued. Keep the AttachedWorker "
                "alive until every job that targets it is done, or use Context::spawn.");
  }
}

AffineEntry::~AffineEntry() {
  // release: pairs with the acquire load in close_affine: our push happens before its drain.
  slot_.inbox->gate.fetch_sub(1, std::memory_order_release);
}

std::uint32_t open_affine(Worker& slot) noexcept {
  // relaxed: the attached thread hands the generation to other threads (AttachedThread) by
  // whatever synchronises them; only the gate's modification order matters here.
  return gate_generation(slot.inbox->gate.fetch_add(kGenerationStep, std::memory_order_relaxed) +
                         kGenerationStep);
}

void close_affine(Worker& slot) noexcept {
  AffineInbox& inbox = *slot.inbox;
  // relaxed: as in AffineEntry (the modification order decides who is in).
  inbox.gate.fetch_add(kGenerationStep, std::memory_order_relaxed);
  // acquire: pairs with the release fetch_sub of every AffineEntry that got in: its push (and
  // its unit on `pending`) is visible before we wait. A pusher inside runs a few instructions.
  while ((inbox.gate.load(std::memory_order_acquire) & kInsideMask) != 0) sched_yield();
  try {
    // Runs the affine jobs left (find_job); detaching rethrows nothing.
    (void)wait_on_fiber(&slot.native, inbox.pending);
  } catch (...) {
    die_with(
        "fiberjob: an AttachedWorker could not run its pending thread-affine jobs before "
        "detaching (no fiber could be had to wait on); raise Config::max_fiber_count.");
  }
}

void submit_affine(Scheduler& scheduler, Worker& slot, Counter& counter, JobRecord* record,
                   Priority priority) {
  try {
    counter.add(1);
  } catch (...) {
    discard_records(scheduler, std::span<JobRecord* const>(&record, 1));
    throw;
  }
  CounterWaitList::set_scheduler_hint(counter, &scheduler);
  slot.inbox->pending.add(1);  // cannot throw: only this file signals it, once per unit
  push_affine(slot, Job::run(record, priority));
}

void push_affine(Worker& slot, Job job) noexcept {
  AffineInbox& inbox = *slot.inbox;
  CountedQueue& lane = job.kind() == Job::Kind::Run ? inbox.fresh : inbox.woken;
  if (!lane.push(job.bits())) {
    die_with(
        "fiberjob: out of memory queueing a thread-affine job, so it would be lost; free "
        "memory, or queue fewer affine jobs at once");
  }
  // The slot's thread may be parked with the other workers in the idle event count (inside a
  // wait): wake them all; the others look and park again (as wake_pinned does).
  slot.scheduler->notify_all_idle();
}

Job take_woken_affine(Worker& worker) noexcept {
  return take_from(*worker.inbox, worker.inbox->woken);
}

Job take_fresh_affine(Worker& worker) noexcept {
  return take_from(*worker.inbox, worker.inbox->fresh);
}

bool give_back_affine(Worker& worker, Job job) noexcept {
  if (!claim_affine(worker.inbox.get(), job)) return false;
  push_affine(worker, job);  // still counted in `pending`
  return true;
}

void finish_affine(Worker& slot) noexcept { CounterWaitList::signal(slot.inbox->pending, &slot); }

std::size_t run_pending_affine(Worker& slot) {
  // On the thread's own stack, and not inside a job run on it (an affine job, or a child run
  // inline by a wait): those set native.job_counter until they end.
  if (current_worker() != &slot || slot.current != &slot.native ||
      slot.native.job_counter != nullptr) {
    throw Error(ErrorCode::AttachMisuse,
                "fiberjob: AttachedWorker::run_pending was called on another thread than the "
                "attached one, or from inside a job; call it from the attached thread's own "
                "code (its frame loop), outside jobs");
  }
  // relaxed: see CountedQueue::size. The fresh jobs queued now; the woken ones (fibers, hops)
  // first and again after each fresh job, as find_job takes them, so that the fibers an
  // affine job's wait holds do not pile up while the thread starts later jobs.
  std::int64_t fresh = slot.inbox->fresh.size.load(std::memory_order_relaxed);
  std::size_t ran = run_woken_on_native(slot);
  for (; fresh > 0; --fresh) {
    const Job job = take_from(*slot.inbox, slot.inbox->fresh);
    if (!job) break;
    run_on_native(slot, job);
    ran += 1 + run_woken_on_native(slot);
  }
  return ran;
}

bool on_attached_thread(const Worker& slot, std::uint32_t generation) noexcept {
  // relaxed: when we are the slot's thread, we wrote the generation ourselves.
  return current_worker() == &slot &&
         gate_generation(slot.inbox->gate.load(std::memory_order_relaxed)) == generation;
}

void suspend_to_attached(WaitNode& node, Worker& slot, std::uint32_t generation,
                         const Scheduler& caller, std::coroutine_handle<> coroutine) {
  if (slot.scheduler != &caller) {
    throw Error(ErrorCode::AttachMisuse,
                "fiberjob: co_await ctx.resume_on(thread) names a thread attached to another "
                "JobSystem than the awaiting job's; the coroutine did not move. A job runs only "
                "on its own system's threads: resume_on a thread attached to the job's system, "
                "or hand the work to the other system with AttachedThread::spawn.");
  }
  const AffineEntry entry(slot, generation);  // throws once detached: the coroutine stays
  const Priority priority = fill_hop_node(node, *slot.scheduler, coroutine);
  slot.inbox->pending.add(1);
  // The coroutine may run on the slot's thread from here on: touch nothing of it after this.
  push_affine(slot, Job::resume_coroutine(&node, priority));
}

bool on_worker_thread(const Scheduler& scheduler) noexcept {
  const Worker* worker = current_worker_of(scheduler);
  return worker != nullptr && !worker->is_slot;
}

void suspend_to_workers(WaitNode& node, Scheduler& scheduler, std::coroutine_handle<> coroutine) {
  const Priority priority = fill_hop_node(node, scheduler, coroutine);
  // The coroutine may run on a worker from here on: touch nothing of it after this.
  scheduler.push_to_worker_threads(Job::resume_coroutine(&node, priority), current_worker());
}

}  // namespace detail

AttachedThread::AttachedThread(const AttachedWorker& worker) noexcept
    : slot_(worker.slot_), scheduler_(worker.slot_->scheduler), generation_(worker.generation_) {}

std::size_t AttachedThread::index() const noexcept { return slot_->index; }

ResumeOnAwaiter Context::resume_on(AttachedThread thread) noexcept {
  return ResumeOnAwaiter(thread, scheduler_);
}

ResumeOnAnyAwaiter Context::resume_on_any() noexcept { return ResumeOnAnyAwaiter(scheduler_); }

}  // namespace fiberjob
