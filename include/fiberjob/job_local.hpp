#pragma once
/// \file
/// `JobLocal<T>`: a value that belongs to the running job and follows it across suspensions
/// and migrations (Boost.Fiber's `fiber_specific_ptr`, FiberTaskingLib's `ThreadLocal`
/// counterpart for jobs).

#include <atomic>
#include <cstdint>
#include <utility>

namespace fiberjob {

namespace detail {

class TaskPromiseBase;

/// One job-local value of one job: an intrusive list of them hangs off the job's JobRoot (the
/// fiber's own root for a plain job the dispatch loop runs, a root in the frame of a waiting
/// job that runs jobs nested on its stack, or the root coroutine's promise). Internal.
struct JobLocalEntry {
  const void* key = nullptr;  ///< The JobLocal object the value belongs to.
  void* value = nullptr;      ///< Owned: destroyed with `destroy`.
  void (*destroy)(void*) noexcept = nullptr;
  JobLocalEntry* next = nullptr;
};

/// What a job keeps for itself wherever it lives (Fiber::root for the plain jobs the dispatch
/// loop runs one after the other on a fiber, a root in KeepOuterJob's frame for plain jobs run
/// nested on a waiting job's stack, or the root coroutine's promise); Fiber::job_locals points
/// at `locals`, its first member, so the whole root is found from there. Internal.
struct JobRoot {
  /// The job's JobLocal values (an intrusive list; nullptr: none).
  JobLocalEntry* locals = nullptr;
  /// The job's identity as a Mutex owner when a coroutine of the job locks one through
  /// `co_await scoped_lock()`: 0 until the first such lock, then a number no other job ever
  /// gets (coroutine frames are recycled, so their addresses are not). Written and read by the
  /// job's own code, and by a Mutex hand-off while the job waits in the mutex's queue.
  std::uint64_t lock_owner = 0;
  /// A coroutine job's root task (the promise this root lives in); nullptr for a plain job.
  TaskPromiseBase* task = nullptr;
  /// A coroutine job's JobOptions::name (nullptr: none), kept for its later run segments
  /// (traces) and for write_diagnostics. A string that outlives the job, as JobOptions says.
  const char* name = nullptr;
  /// While a coroutine job's innermost task is suspended in a wait of fiberjob (a counter,
  /// Event, Mutex, ConditionVariable, Semaphore, a timed wait, a sleep, a blocking call): the
  /// object and what it is ("counter", "Event", ... a string literal); nullptr otherwise.
  /// Stored by the awaiter's out-of-line half before it links the coroutine
  /// (note_task_wait), cleared when a worker resumes it; read by write_diagnostics and
  /// debuggers as pointers only, never dereferenced (the object may be gone). relaxed
  /// throughout: a diagnostic snapshot, pairs with nothing.
  std::atomic<const void*> waits_on{nullptr};
  std::atomic<const char*> waits_on_what{nullptr};
};

/// The JobRoot whose `locals` member `job_locals` points at (Fiber::job_locals, a wait node's
/// copy of it): `locals` is its first member, so the two addresses are the same.
inline JobRoot* job_root_of(void* job_locals) noexcept { return static_cast<JobRoot*>(job_locals); }

/// The running job's entry for `key`, or nullptr. Errors: Error (NotOnFiber) outside a job.
JobLocalEntry* find_job_local(const void* key);
/// Sets the running job's value for `key` (destroying the old one; nullptr removes it).
/// Errors: Error (NotOnFiber) outside a job; std::bad_alloc (then `value` is destroyed).
void set_job_local(const void* key, void* value, void (*destroy)(void*) noexcept);
/// destroy_job_locals for a list that is not empty (out of line).
void destroy_job_local_list(JobLocalEntry*& head) noexcept;
/// Destroys every value of a job's list (in reverse order of creation) and frees the entries.
/// Inline test for the empty list (most jobs have no JobLocal value): a job's end costs no call.
inline void destroy_job_locals(JobLocalEntry*& head) noexcept {
  if (head != nullptr) [[unlikely]] {
    destroy_job_local_list(head);
  }
}

}  // namespace detail

/// A pointer slot that every job has its own value of, as `thread_local` gives every thread
/// its own. Unlike `thread_local`, which belongs to the worker *thread* and so changes under a
/// job that suspends and resumes on another worker (and is shared by every job that runs on
/// that thread), a `JobLocal` value belongs to the job: it stays the same across
/// `this_fiber::wait`, `co_await` and migrations, and is invisible to other jobs, including the
/// children a waiting job runs inline on its own stack.
///
/// * Plain job: the values live until the job returns.
/// * Coroutine job: they belong to the whole job (every `Task` it awaits, on any fiber), and
///   live until its root coroutine finishes.
/// Values are owned: the job's end destroys them (`delete`), in reverse order of creation.
///
/// Cost: `get()` walks the job's short list of values (one entry per JobLocal the job set): a
/// few loads. `reset`/`emplace` allocate one small entry the first time a job sets a given
/// JobLocal (plus the value, which the caller allocates). No cost for jobs that never use one.
/// Thread-safety: the object itself may be shared by all jobs (declare it `static` or at
/// namespace scope); each job sees only its own value. Must outlive every job that set it.
/// Errors: `Error` (`NotOnFiber`) when used outside a job (a plain thread, or a foreign
/// coroutine resumed off the workers).
/// \tparam T the value type.
template <class T>
class JobLocal {
 public:
  JobLocal() noexcept = default;
  JobLocal(const JobLocal&) = delete;
  JobLocal& operator=(const JobLocal&) = delete;

  /// The running job's value. Suspends: no.
  /// \return it, or nullptr when this job has set none.
  [[nodiscard]] T* get() const {
    detail::JobLocalEntry* entry = detail::find_job_local(this);
    return entry != nullptr ? static_cast<T*>(entry->value) : nullptr;
  }
  /// The running job's value; it must have one (`get() != nullptr`).
  /// \return the value.
  T& operator*() const { return *get(); }
  /// Member access to the running job's value; it must have one.
  /// \return the value's address.
  T* operator->() const { return get(); }

  /// Gives the running job `value` (owned; nullptr removes the value), destroying its old one.
  /// Suspends: no. Errors: as the class; on std::bad_alloc `value` is deleted.
  /// \param value the new value, allocated with `new`.
  void reset(T* value = nullptr) { detail::set_job_local(this, value, &destroy); }

  /// Makes the running job's value a new `T(args...)` (replacing any old one).
  /// \param args the constructor's arguments.
  /// \return the new value.
  template <class... Args>
  T& emplace(Args&&... args) {
    T* value = new T(std::forward<Args>(args)...);
    reset(value);
    return *value;
  }

  /// Takes the running job's value out without destroying it.
  /// \return the value (now the caller's), or nullptr when the job had none.
  [[nodiscard]] T* release() {
    detail::JobLocalEntry* entry = detail::find_job_local(this);
    if (entry == nullptr) return nullptr;
    T* value = static_cast<T*>(entry->value);
    entry->value = nullptr;
    return value;
  }

 private:
  static void destroy(void* value) noexcept { delete static_cast<T*>(value); }
};

}  // namespace fiberjob
