#pragma once
// Test helpers: configurations and the worker counts every scheduler test sweeps.

#include <fiberjob/config.hpp>

#include <cstdint>
#include <initializer_list>

namespace fiberjob::test {

/// Worker counts swept by scheduler tests (more workers than cores on purpose: preemption
/// exposes races that cooperative timing hides).
inline constexpr std::initializer_list<std::uint32_t> kWorkerCounts = {1, 2, 4, 8};

inline Config config_with(std::uint32_t workers, std::uint32_t fibers = 128) {
  Config config;
  config.worker_count = workers;
  config.fiber_count = fibers;
  return config;
}

}  // namespace fiberjob::test
