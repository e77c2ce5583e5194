// Worker construction and the thread-local "current worker" accessor.

#include "worker.hpp"

#include "counter_wait_list.hpp"
#include "fiber_switch.hpp"
#include "fiberjob/detail/die.hpp"

namespace fiberjob::detail {
namespace {
// initial-exec: read as one %fs-relative load, not through the general-dynamic TLS call that
// -fPIC implies (which the linker relaxes, but leaves current_worker a stack frame: six
// instructions instead of three, on every spawn, wait and yield). The cost: a process that
// dlopen()s a shared library holding fiberjob needs 8 bytes of the static TLS surplus, which
// glibc reserves for such libraries (16 with the frame pool's, src/coroutine_frame.cpp).
[[gnu::tls_model("initial-exec")]] thread_local Worker* t_current_worker = nullptr;
}  // namespace

Worker::Worker(Scheduler& owner, std::uint32_t worker_index, Injector& injector,
               std::size_t trace_capacity)
    : scheduler(&owner),
      index(worker_index),
      trace(trace_capacity),
      rng_state(0x9E3779B97F4A7C15ull * (worker_index + 1)) {
  injector.make_tokens(tokens);
  set_state(native, FiberState::Native);
  native.worker = this;
  native.scheduler = &owner;
}

void die_deque_full() noexcept {
  die_with(
      "fiberjob: out of memory growing a work-stealing deque, so a job could not be queued; "
      "free memory, or queue fewer jobs at once");
}

void apply_deferred_signals(Worker& worker) noexcept {
  Counter* counter = worker.deferred_counter;
  worker.deferred_counter = nullptr;
  CounterWaitList::signal(*counter, &worker, worker.deferred_signals);
}

void apply_deferred_links(Worker& worker) noexcept {
  Counter* counter = worker.deferred_link_counter;
  worker.deferred_link_counter = nullptr;
  CounterWaitList::link_chunk(*counter, *worker.deferred_link_first, *worker.deferred_link_last,
                              worker.deferred_links, &worker);
}

void apply_deferred(Worker& worker) noexcept {
  if (worker.deferred_link_counter != nullptr) apply_deferred_links(worker);
  if (worker.deferred_counter != nullptr) apply_deferred_signals(worker);
}

void push_next(Worker& worker, Job job) noexcept {
  // relaxed: only this thread stores non-zero values, so a 0 here is current; a stale non-zero
  // (a thief took it meanwhile) only sends the job to the deque.
  if (!worker.is_slot && worker.next.load(std::memory_order_relaxed) == 0) {
    // release: pairs with the acquire exchange/CAS that takes it (find_job, steal_next), so the
    // fiber's stored continuation is visible to whoever resumes it.
    worker.next.store(job.bits(), std::memory_order_release);
  } else {
    push_local(worker, job);
  }
}

void die_yield_queue_full() noexcept {
  die_with(
      "fiberjob: out of memory growing a worker's yield queue, so a yielding fiber would be lost; "
      "free memory, or have fewer jobs yield at once");
}

__attribute__((noinline)) Worker* current_worker() noexcept {
  // Compiler barrier: forbid reusing a thread_local address computed before a fiber switch.
  asm volatile("" ::: "memory");
  return t_current_worker;
}

// Reads the thread-local itself rather than calling current_worker(): one call less on every
// this_fiber call. Declared in fiber_switch.hpp.
__attribute__((noinline)) Fiber* current_fiber() noexcept {
  asm volatile("" ::: "memory");  // as in current_worker
  return running_fiber(t_current_worker);
}

__attribute__((noinline)) void set_current_worker(Worker* worker) noexcept {
  asm volatile("" ::: "memory");
  t_current_worker = worker;
}

}  // namespace fiberjob::detail
