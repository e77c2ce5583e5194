// Replaces the global operator new to count its calls, in all threads and per thread
// (count_allocations.hpp). Its own translation unit: inlined into a test's (or Asio's) code,
// the replacement pairs look mismatched to g++'s -Wmismatched-new-delete. Not linked in TSan
// builds: TSan's runtime defines operator new itself.

#include "support/count_allocations.hpp"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<long> g_allocations{0};
thread_local long t_allocations = 0;

void count() noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);  // relaxed: a count, orders nothing
  ++t_allocations;
}
}  // namespace

namespace fiberjob::test {
long allocations_total() noexcept { return g_allocations.load(); }
long allocations_on_this_thread() noexcept { return t_allocations; }
}  // namespace fiberjob::test

void* operator new(std::size_t size) {
  count();
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t size, std::align_val_t align) {
  count();
  const auto a = static_cast<std::size_t>(align);
  if (void* p = std::aligned_alloc(a, (size + a - 1) / a * a)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
