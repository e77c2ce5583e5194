#pragma once
// Busy-waits (keeping a worker occupied on purpose) until `flag` is set or `limit` passes.

#include <atomic>
#include <chrono>

namespace fiberjob::test {

inline void spin_until(const std::atomic<bool>& flag, std::chrono::milliseconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!flag.load() && std::chrono::steady_clock::now() < until) {
  }
}

}  // namespace fiberjob::test
