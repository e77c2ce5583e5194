// JobLocal: the running job's list of values. The list head lives with the job — a local of
// run_job's frame for a plain job (on its fiber's stack, so it follows the fiber), or the root
// coroutine's promise for a coroutine job — and the running fiber points at it
// (Fiber::job_locals; a coroutine's wait node carries the pointer to the fiber that resumes it).

#include "fiberjob/job_local.hpp"

#include <new>
#include <utility>

#include "fiber_switch.hpp"
#include "fiberjob/error.hpp"
#include "worker.hpp"

namespace fiberjob::detail {
namespace {

JobLocalEntry** require_job_locals() {
  Fiber* self = current_fiber();
  if (self == nullptr || self->job_locals == nullptr) {
    throw Error(ErrorCode::NotOnFiber,
                "fiberjob: JobLocal used outside a job (a plain thread, an attached thread "
                "between jobs, or a foreign coroutine resumed off the workers); it holds one "
                "value per job. Use thread_local for per-thread values");
  }
  return self->job_locals;
}

}  // namespace

JobLocalEntry* find_job_local(const void* key) {
  for (JobLocalEntry* entry = *require_job_locals(); entry != nullptr; entry = entry->next) {
    if (entry->key == key) return entry;
  }
  return nullptr;
}

void set_job_local(const void* key, void* value, void (*destroy)(void*) noexcept) {
  JobLocalEntry** head = nullptr;
  try {
    head = require_job_locals();
  } catch (...) {
    if (value != nullptr) destroy(value);
    throw;
  }
  for (JobLocalEntry* entry = *head; entry != nullptr; entry = entry->next) {
    if (entry->key == key) {
      void* old = entry->value;
      entry->value = value;
      if (old != nullptr) entry->destroy(old);
      return;
    }
  }
  if (value == nullptr) return;
  JobLocalEntry* entry = new (std::nothrow) JobLocalEntry{key, value, destroy, *head};
  if (entry == nullptr) {
    destroy(value);
    throw std::bad_alloc();
  }
  *head = entry;  // newest first: destroyed first
}

void destroy_job_local_list(JobLocalEntry*& head) noexcept {
  // A destructor may set another JobLocal of the same job: take the list first, repeat.
  while (JobLocalEntry* entry = head) {
    head = entry->next;
    if (entry->value != nullptr) entry->destroy(entry->value);
    delete entry;
  }
}

}  // namespace fiberjob::detail
