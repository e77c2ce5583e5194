// Config validation: every out-of-range field is rejected with a message naming it.

#include "config_check.hpp"

#include <unistd.h>

#include <string>
#include <thread>

#include "fiberjob/error.hpp"

namespace fiberjob {

std::uint32_t hardware_worker_count() noexcept {
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1u : n;
}

namespace detail {
namespace {

constexpr std::uint32_t kMaxWorkers = 1024;
constexpr std::uint32_t kMaxFibers = 1u << 20;
constexpr std::uint32_t kMaxAttachableThreads = 64;
constexpr std::size_t kMaxStackBytes = std::size_t{1} << 30;

/// Bytes per trace event (TraceEvent in trace.hpp; Config::trace_events_per_worker's unit).
constexpr std::size_t kTraceEventBytes = 24;

/// Physical memory of this machine in bytes (a huge value when unknown: no limit then).
std::size_t physical_memory_bytes() noexcept {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_bytes = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page_bytes <= 0) return static_cast<std::size_t>(-1);
  return static_cast<std::size_t>(pages) * static_cast<std::size_t>(page_bytes);
}

[[noreturn]] void reject(const std::string& message) {
  throw Error(ErrorCode::InvalidConfig, "fiberjob: invalid Config: " + message);
}

}  // namespace

Config validate_config(const Config& config) {
  Config checked = config;
  const std::uint32_t hardware = hardware_worker_count();
  if (config.worker_count == 0 || config.worker_count > kMaxWorkers) {
    reject("Config::worker_count = " + std::to_string(config.worker_count) +
           "; it must be in [1, " + std::to_string(kMaxWorkers) + "]");
  }
  if (config.pin_workers && config.worker_count > hardware) {
    reject("Config::pin_workers needs Config::worker_count (" +
           std::to_string(config.worker_count) + ") <= the hardware threads (" +
           std::to_string(hardware) + "); lower worker_count or turn pinning off");
  }
  if (config.fiber_count < config.worker_count + 1 || config.fiber_count > kMaxFibers) {
    reject("Config::fiber_count = " + std::to_string(config.fiber_count) +
           "; it must be in [Config::worker_count + 1 = " +
           std::to_string(config.worker_count + 1) + ", " + std::to_string(kMaxFibers) +
           "] (each worker runs on one fiber; each suspended job holds one more)");
  }
  if (config.attachable_threads > kMaxAttachableThreads) {
    reject("Config::attachable_threads = " + std::to_string(config.attachable_threads) +
           "; it must be in [0, " + std::to_string(kMaxAttachableThreads) + "]");
  }
  if (config.fiber_stack_size < Config::kMinFiberStackSize ||
      config.fiber_stack_size > kMaxStackBytes) {
    reject("Config::fiber_stack_size = " + std::to_string(config.fiber_stack_size) +
           " bytes; it must be in [" + std::to_string(Config::kMinFiberStackSize) + ", " +
           std::to_string(kMaxStackBytes) + "] bytes");
  }
  if (config.idle_policy != IdlePolicy::Park && config.idle_policy != IdlePolicy::Spin) {
    reject("Config::idle_policy has an unknown value; use IdlePolicy::Park or IdlePolicy::Spin");
  }
  if (config.tracing && (config.trace_events_per_worker == 0 ||
                         config.trace_events_per_worker > (std::size_t{1} << 26))) {
    reject("Config::trace_events_per_worker = " + std::to_string(config.trace_events_per_worker) +
           "; with Config::tracing on it must be in [1, 2^26]");
  }
  if (config.tracing) {
    // Every worker and attachable slot gets a buffer up front: bound the sum, not only each.
    const std::size_t buffers = std::size_t{config.worker_count} + config.attachable_threads;
    const std::size_t total_bytes = config.trace_events_per_worker * buffers * kTraceEventBytes;
    const std::size_t limit_bytes = physical_memory_bytes() / 2;
    if (total_bytes > limit_bytes) {
      reject("tracing needs Config::trace_events_per_worker (" +
             std::to_string(config.trace_events_per_worker) + ") x (Config::worker_count + " +
             "Config::attachable_threads = " + std::to_string(buffers) + ") x " +
             std::to_string(kTraceEventBytes) + " bytes = " + std::to_string(total_bytes >> 20) +
             " MiB of trace buffers, more than half of this machine's physical memory (" +
             std::to_string(limit_bytes >> 20) +
             " MiB); lower Config::trace_events_per_worker or Config::worker_count");
    }
  }
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  checked.fiber_stack_size = (config.fiber_stack_size + page - 1) / page * page;
  return checked;
}

}  // namespace detail
}  // namespace fiberjob
