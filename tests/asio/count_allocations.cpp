// Replaces the global operator new to count the allocations of each thread (for
// asio_test.cpp). Its own translation unit: inlined into Asio's code, the replacement pairs
// look mismatched to g++'s -Wmismatched-new-delete.

#include <cstdlib>
#include <new>

namespace {
thread_local long t_allocations = 0;
}  // namespace

/// Global allocations made by the calling thread so far.
long allocations_on_this_thread() noexcept { return t_allocations; }

void* operator new(std::size_t size) {
  ++t_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t align) {
  ++t_allocations;
  const auto a = static_cast<std::size_t>(align);
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
