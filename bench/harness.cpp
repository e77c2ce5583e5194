// Definitions shared by every system: reference results and the parallel_for kernel.

#include <cmath>
#include <cstdint>
#include <vector>

#include "harness.hpp"

namespace bench {

std::int64_t fib_reference(int n) {
  std::int64_t a = 0;
  std::int64_t b = 1;
  for (int i = 0; i < n; ++i) {
    const std::int64_t next = a + b;
    a = b;
    b = next;
  }
  return a;
}

std::int64_t skynet_leaves(int depth) {
  std::int64_t leaves = 1;
  for (int i = 0; i < depth; ++i) leaves *= 10;
  return leaves;
}

std::int64_t skynet_sum(int depth) {
  const std::int64_t leaves = skynet_leaves(depth);
  return leaves * (leaves - 1) / 2;
}

__attribute__((noinline)) void sqrt_range(const float* in, float* out, std::int64_t lo,
                                          std::int64_t hi) {
  for (std::int64_t i = lo; i < hi; ++i) out[i] = std::sqrt(in[i]);
}

void prepare_sqrt(std::vector<float>& in, std::vector<float>& out, std::int64_t n) {
  in.resize(static_cast<std::size_t>(n));
  out.assign(static_cast<std::size_t>(n), -1.0f);
  for (std::int64_t i = 0; i < n; ++i) in[static_cast<std::size_t>(i)] = static_cast<float>(i);
}

std::int64_t count_correct_sqrt(const std::vector<float>& in, const std::vector<float>& out) {
  std::int64_t correct = 0;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (out[i] == std::sqrt(in[i])) ++correct;
  }
  return correct;
}

}  // namespace bench
