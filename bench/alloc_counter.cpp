// Counts the process's global-allocator calls for the allocation workloads: replaces the global
// operator new/delete (every form) and interposes glibc's malloc family, forwarding to glibc's
// own implementation (__libc_malloc & co). operator new forwards straight to __libc_malloc, so a
// call is counted once. Counting is off until alloc::enable(true): the time workloads only pay
// one relaxed load of a flag that never changes while they run.

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <new>

#include "harness.hpp"

extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
void __libc_free(void* p);
}

namespace {

std::atomic<bool> g_enabled{false};
std::atomic<std::uint64_t> g_new_calls{0};
std::atomic<std::uint64_t> g_malloc_calls{0};

inline void count(std::atomic<std::uint64_t>& counter) noexcept {
  if (g_enabled.load(std::memory_order_relaxed)) {  // relaxed: statistics
    counter.fetch_add(1, std::memory_order_relaxed);
  }
}

void* new_impl(std::size_t size, std::size_t alignment) {
  count(g_new_calls);
  if (size == 0) size = 1;
  void* p = alignment <= alignof(std::max_align_t) ? __libc_malloc(size)
                                                   : __libc_memalign(alignment, size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* new_nothrow(std::size_t size, std::size_t alignment) noexcept {
  try {
    return new_impl(size, alignment);
  } catch (...) {
    return nullptr;
  }
}

constexpr std::size_t kDefault = alignof(std::max_align_t);

}  // namespace

void* operator new(std::size_t size) { return new_impl(size, kDefault); }
void* operator new[](std::size_t size) { return new_impl(size, kDefault); }
void* operator new(std::size_t size, std::align_val_t a) {
  return new_impl(size, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t size, std::align_val_t a) {
  return new_impl(size, static_cast<std::size_t>(a));
}
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  return new_nothrow(size, kDefault);
}
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept {
  return new_nothrow(size, kDefault);
}
void* operator new(std::size_t size, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_nothrow(size, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t size, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_nothrow(size, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { __libc_free(p); }
void operator delete[](void* p) noexcept { __libc_free(p); }
void operator delete(void* p, std::size_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::size_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { __libc_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { __libc_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { __libc_free(p); }

// The C allocator, interposed for the whole process (libtbb, Boost.Fiber's stacks, libstdc++).
extern "C" {
void* malloc(std::size_t size) {
  count(g_malloc_calls);
  return __libc_malloc(size);
}
void* calloc(std::size_t n, std::size_t size) {
  count(g_malloc_calls);
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t size) {
  count(g_malloc_calls);
  return __libc_realloc(p, size);
}
void free(void* p) { __libc_free(p); }
void* memalign(std::size_t alignment, std::size_t size) {
  count(g_malloc_calls);
  return __libc_memalign(alignment, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) {
  count(g_malloc_calls);
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) {
  if (alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
  count(g_malloc_calls);
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}

namespace bench::alloc {

void enable(bool on) noexcept { g_enabled.store(on, std::memory_order_relaxed); }

Counts read() noexcept {
  return {g_new_calls.load(std::memory_order_relaxed),
          g_malloc_calls.load(std::memory_order_relaxed)};
}

}  // namespace bench::alloc
