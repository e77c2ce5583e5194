#pragma once
// The recursive jobs of benchmark rows 1, 2, 1c and 2c, shared by fiberjob_bench
// (fiberjob_workloads.cpp) and fiberjob_instructions (instructions.cpp), so that the
// instruction counts are of exactly the code the timed rows run.

#include <fiberjob/fiberjob.hpp>

#include <array>
#include <cstddef>
#include <cstdint>

namespace bench::tasks {

namespace fj = fiberjob;

/// Row 1: fib(n) as plain jobs; every call with n >= 2 spawns two children and waits for both.
inline void fib_job(fj::Context& ctx, int n, std::int64_t* out) {
  if (n < 2) {
    *out = n;
    return;
  }
  std::int64_t a = 0;
  std::int64_t b = 0;
  fj::Counter children;
  ctx.spawn(children, [n, &a](fj::Context& c) { fib_job(c, n - 1, &a); });
  ctx.spawn(children, [n, &b](fj::Context& c) { fib_job(c, n - 2, &b); });
  fj::this_fiber::wait(children);
  *out = a + b;
}

/// Row 2: skynet as plain jobs; every inner node of the 10-ary tree spawns 10 children and
/// waits; a leaf returns its index `num`.
inline void skynet_job(fj::Context& ctx, std::int64_t num, std::int64_t size, std::int64_t* out) {
  if (size == 1) {
    *out = num;
    return;
  }
  std::array<std::int64_t, 10> sums{};
  const std::int64_t child = size / 10;
  fj::Counter children;
  for (int i = 0; i < 10; ++i) {
    ctx.spawn(children, [num, child, i, &sums](fj::Context& c) {
      skynet_job(c, num + i * child, child, &sums[static_cast<std::size_t>(i)]);
    });
  }
  fj::this_fiber::wait(children);
  std::int64_t sum = 0;
  for (std::int64_t s : sums) sum += s;
  *out = sum;
}

/// Row 1c: fib(n) as coroutine jobs, children awaited with co_await ctx.wait.
inline fj::Task<> fib_task(fj::Context& ctx, int n, std::int64_t* out) {
  if (n < 2) {
    *out = n;
    co_return;
  }
  std::int64_t a = 0;
  std::int64_t b = 0;
  fj::Counter children;
  ctx.spawn(children, [n, &a](fj::Context& c) { return fib_task(c, n - 1, &a); });
  ctx.spawn(children, [n, &b](fj::Context& c) { return fib_task(c, n - 2, &b); });
  co_await ctx.wait(children);
  *out = a + b;
}

/// Row 2c: skynet as coroutine jobs.
inline fj::Task<> skynet_task(fj::Context& ctx, std::int64_t num, std::int64_t size,
                              std::int64_t* out) {
  if (size == 1) {
    *out = num;
    co_return;
  }
  std::array<std::int64_t, 10> sums{};
  const std::int64_t child = size / 10;
  fj::Counter children;
  for (int i = 0; i < 10; ++i) {
    ctx.spawn(children, [num, child, i, &sums](fj::Context& c) {
      return skynet_task(c, num + i * child, child, &sums[static_cast<std::size_t>(i)]);
    });
  }
  co_await ctx.wait(children);
  std::int64_t sum = 0;
  for (std::int64_t s : sums) sum += s;
  *out = sum;
}

}  // namespace bench::tasks
