#pragma once
/// \file
/// Type-erased storage for one `Job::Run`: the callable, the counter it signals. Internal.

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstring>
#include <new>
#include <span>
#include <type_traits>
#include <utility>

#include "fiberjob/config.hpp"
#include "fiberjob/counter.hpp"
#include "fiberjob/task.hpp"

namespace fiberjob {
class Context;
}  // namespace fiberjob

namespace fiberjob::detail {

class Scheduler;

/// Bytes of callable stored inside a record; larger callables are boxed on the heap.
inline constexpr std::size_t kInlineCallableBytes = 40;

/// One job to run: a cache line holding the invoker, the counter, the callable itself and the
/// job's name.
/// Records come from per-worker free lists (`RecordPool`), so steady-state spawning of callables
/// of up to `kInlineCallableBytes` bytes (alignment <= 16) never calls the global allocator.
/// 64 bytes on every platform, so the same callables fit inline everywhere: one line on x86-64
/// and on Arm's Cortex-A and Neoverse cores, half a line on Apple's M-series (128-byte lines),
/// where two records may share a line.
struct alignas(64) JobRecord {
  /// With `ctx`: runs the job. Returns true when the job has ended (the caller then returns the
  /// record and signals the counter), false when a coroutine took the job over (its final
  /// suspend ends it: finish_task_job). If it throws, the job has ended and the callable is
  /// destroyed. With ctx == nullptr: only destroys the callable (returns true).
  using Invoke = bool (*)(JobRecord& record, Context* ctx);

  /// The links of a record that sits in a free list (intrusive: a free list never allocates).
  struct FreeLinks {
    JobRecord* next;        ///< Next free record of the same chain (nullptr: the chain's last).
    JobRecord* next_chain;  ///< First record of a chain in RecordPool's shared list: next chain.
    std::size_t count;      ///< First record of a chain in the shared list: records in the chain.
  };

  Invoke invoke = nullptr;
  union {
    /// The counter the job signals once it is queued.
    Counter* counter = nullptr;
    /// Only while a span of records is being built (submit_span), before anything is queued:
    /// the next record built.
    JobRecord* next_built;
  };
  union {
    FreeLinks free;  ///< While the record sits in a free list.
    /// At offset 16 of a 64-byte aligned record: 16-byte aligned (checked below), though
    /// declared with 8 so that `name` fits in the same line.
    alignas(8) unsigned char storage[kInlineCallableBytes];
  };
  /// `JobOptions::name` (nullptr: none), for traces and debuggers. Set at every spawn.
  const char* name = nullptr;

  JobRecord() noexcept : free{nullptr, nullptr, 0} {}
};
static_assert(sizeof(JobRecord) == 64, "a job record is 64 bytes on every platform");
static_assert(offsetof(JobRecord, storage) == 16, "inline callables are 16-byte aligned");

template <class Fn>
inline constexpr bool kStoredInline = sizeof(Fn) <= kInlineCallableBytes &&
                                      alignof(Fn) <= 16 && std::is_nothrow_move_constructible_v<Fn>;

/// What a job callable returns when called the way fiberjob calls it.
template <class Fn>
using JobResult = std::conditional_t<std::invocable<Fn&, Context&>,
                                     std::invoke_result<Fn&, Context&>, std::invoke_result<Fn&>>;

/// A callable fiberjob can run as a job: invocable as `f(Context&)` or `f()`, returning void
/// or `Task<>`.
template <class F>
concept JobCallable = std::move_constructible<std::decay_t<F>> &&
    (std::invocable<std::decay_t<F>&, Context&> || std::invocable<std::decay_t<F>&>)&&(
        std::is_void_v<typename JobResult<std::decay_t<F>>::type> ||
        std::is_same_v<typename JobResult<std::decay_t<F>>::type, Task<void>>);

template <class Fn>
decltype(auto) call_job(Fn& fn, Context& ctx) {
  if constexpr (std::invocable<Fn&, Context&>) {
    return fn(ctx);
  } else {
    return fn();
  }
}

/// Where a record keeps its callable: inside (small, nothrow-movable) or boxed on the heap.
template <class Fn>
Fn* stored_callable(JobRecord& record) noexcept {
  if constexpr (kStoredInline<Fn>) {
    return std::launder(reinterpret_cast<Fn*>(record.storage));
  } else {
    Fn* fn = nullptr;
    std::memcpy(&fn, record.storage, sizeof fn);
    return fn;
  }
}

template <class Fn>
void destroy_callable(JobRecord& record) noexcept {
  Fn* fn = stored_callable<Fn>(record);
  if constexpr (kStoredInline<Fn>) {
    fn->~Fn();
  } else {
    delete fn;
  }
}

Scheduler& scheduler_of(Context& ctx) noexcept;

/// Starts the coroutine job `coroutine` (made by `record`'s callable): binds it to the job,
/// counts it (Stats::coroutine_jobs_alive), points the running fiber's JobLocal slot at the
/// coroutine's own for the first run segment and runs that segment (up to its first real
/// suspension or its end). One out-of-line call per coroutine job start: the worker and the
/// fiber are looked up once. On the fiber that runs `record`; may suspend only if the
/// coroutine's own code does (a plain wait in it). Errors: none of its own.
void start_coroutine_job(Context& ctx, JobRecord& record,
                         std::coroutine_handle<TaskPromise<void>> coroutine);

template <class Fn>
bool invoke_job(JobRecord& record, Context* ctx) {
  struct Destroy {
    JobRecord& record;
    ~Destroy() { destroy_callable<Fn>(record); }
  };
  if constexpr (std::is_void_v<typename JobResult<Fn>::type>) {
    Destroy destroy{record};
    if (ctx != nullptr) call_job(*stored_callable<Fn>(record), *ctx);
    return true;
  } else {
    if (ctx == nullptr) {
      Destroy destroy{record};
      return true;
    }
    // A coroutine job: the callable (and its captures) must outlive the coroutine, so it is
    // destroyed by finish_task_job at the coroutine's final suspend, not here.
    std::coroutine_handle<TaskPromise<void>> coroutine;
    try {
      coroutine = call_job(*stored_callable<Fn>(record), *ctx).release();
    } catch (...) {
      Destroy destroy{record};  // e.g. the frame could not be allocated: the job ends here
      throw;
    }
    start_coroutine_job(*ctx, record, coroutine);
    return false;
  }
}

/// Takes a free record for `scheduler` (from the calling worker's cache when the caller is one of
/// its workers, else from the shared pool). Allocates a block of records only when all are in use.
JobRecord* acquire_record(Scheduler& scheduler);

/// Returns a record whose callable was never constructed (construction threw).
void release_unused_record(Scheduler& scheduler, JobRecord* record) noexcept;

/// Queues `records` (already counted in `counter`) at `priority`: onto the calling worker's
/// deque when the caller is a worker of `scheduler`, else into the injector. Wakes parked
/// workers as needed. Never throws.
void publish(Scheduler& scheduler, Counter& counter, std::span<JobRecord* const> records,
             Priority priority, std::uint8_t stack_class = 0) noexcept;

/// Adds 1 to `counter`, then queues `record` as publish() does (the common spawn, on the
/// default stack class). If the add throws, the record is discarded. Never throws once
/// `counter.add` succeeded.
void submit_one(Scheduler& scheduler, Counter& counter, JobRecord* record, Priority priority);

/// submit_one for a spawn with JobOptions: the job runs on a fiber of `stack_class` (checked
/// by check_stack_class before the record was made). Same contract as submit_one.
void submit_one_in_class(Scheduler& scheduler, Counter& counter, JobRecord* record,
                         Priority priority, std::uint8_t stack_class);

/// Throws Error (InvalidArgument) when `scheduler` has no stack class `stack_class`
/// (Config::stack_classes).
void check_stack_class(const Scheduler& scheduler, std::uint8_t stack_class);

/// Builds a record holding `f` that will signal `counter`. Throws whatever copying `f` throws
/// (the record is returned to the pool first), or std::bad_alloc for a boxed callable.
template <class F>
JobRecord* make_record(Scheduler& scheduler, Counter& counter, F&& f) {
  using Fn = std::decay_t<F>;
  JobRecord* record = acquire_record(scheduler);
  try {
    if constexpr (kStoredInline<Fn>) {
      ::new (static_cast<void*>(record->storage)) Fn(std::forward<F>(f));
    } else {
      Fn* boxed = new Fn(std::forward<F>(f));
      std::memcpy(record->storage, &boxed, sizeof boxed);
    }
    record->invoke = &invoke_job<Fn>;
  } catch (...) {
    release_unused_record(scheduler, record);
    throw;
  }
  record->counter = &counter;
  record->name = nullptr;
  return record;
}

/// Destroys the callables of `records` without running them and returns the records.
void discard_records(Scheduler& scheduler, std::span<JobRecord* const> records) noexcept;

/// Submits one job per element of `jobs` (each copied), all or nothing: every element is copied
/// into a record first (linked through JobRecord::next_built, so no temporary array is
/// allocated); if a copy throws, the records built so far are discarded and nothing was added
/// or queued. Then `counter` gets all the units in one add (if that throws, everything is
/// discarded), and the records are queued in chunks of 64.
template <class F>
void submit_span(Scheduler& scheduler, Counter& counter, std::span<F> jobs, Priority priority) {
  if (jobs.empty()) return;
  JobRecord* first = nullptr;  // built records, first to last
  JobRecord* last = nullptr;
  auto discard_built = [&scheduler, &first]() noexcept {
    while (JobRecord* record = first) {
      first = record->next_built;
      discard_records(scheduler, std::span<JobRecord* const>(&record, 1));
    }
  };
  try {
    for (auto& job : jobs) {
      JobRecord* record = make_record(scheduler, counter, job);
      record->next_built = nullptr;
      if (last != nullptr) {
        last->next_built = record;
      } else {
        first = record;
      }
      last = record;
    }
    counter.add(static_cast<std::int64_t>(jobs.size()));
  } catch (...) {
    discard_built();
    throw;
  }
  constexpr std::size_t kChunk = 64;
  JobRecord* chunk[kChunk];
  while (first != nullptr) {
    std::size_t n = 0;
    for (; n < kChunk && first != nullptr; ++n) {
      chunk[n] = first;
      first = first->next_built;
      chunk[n]->counter = &counter;  // the link is read: the record gets its counter back
    }
    publish(scheduler, counter, std::span<JobRecord* const>(chunk, n), priority);
  }
}

}  // namespace fiberjob::detail
