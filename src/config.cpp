// Config validation: every out-of-range field is rejected with a message naming it.

#include "config_check.hpp"

#include <unistd.h>

#include <cstdio>
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

/// Memory mappings left for everything but the fiber stacks when max_fiber_count is checked
/// against vm.max_map_count.
constexpr long kMappingsForTheRest = 4096;

/// The OS limit on memory mappings per process (vm.max_map_count), or 0 when unknown.
long max_map_count() noexcept {
  std::FILE* file = std::fopen("/proc/sys/vm/max_map_count", "r");
  if (file == nullptr) return 0;
  long value = 0;
  if (std::fscanf(file, "%ld", &value) != 1) value = 0;
  std::fclose(file);
  return value;
}

/// Bytes per trace event (TraceEvent in trace.hpp; Config::trace_events_per_worker's unit).
constexpr std::size_t kTraceEventBytes = 32;

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

/// The fibers of every class against the OS limit on mappings (validate_config). Errors: Error
/// (InvalidConfig) naming every max_fiber_count field that counts, the largest first.
void check_mappings(const Config& config) {
  const long map_limit = max_map_count();
  if (map_limit <= 0) return;
  long all_fibers = config.max_fiber_count;
  std::string fields = "Config::max_fiber_count = " + std::to_string(config.max_fiber_count);
  std::string largest = "Config::max_fiber_count";
  std::uint32_t largest_count = config.max_fiber_count;
  for (std::size_t i = 0; i < config.stack_classes.size(); ++i) {
    const StackClass& stack_class = config.stack_classes[i];
    const std::string field = "Config::stack_classes[" + std::to_string(i) + "].max_fiber_count";
    all_fibers += stack_class.max_fiber_count;
    fields += " + " + field + " = " + std::to_string(stack_class.max_fiber_count) + " ('" +
              stack_class.name.str() + "')";
    if (stack_class.max_fiber_count > largest_count) {
      largest = field;
      largest_count = stack_class.max_fiber_count;
    }
  }
  // Two mappings per fiber (its stack and the guard below it), and room for the rest of the
  // process (libraries, heap arenas, thread stacks, sanitizer shadow).
  const long needed = 2 * all_fibers + kMappingsForTheRest;
  if (needed <= map_limit) return;
  const long fit = (map_limit - kMappingsForTheRest) / 2;
  reject(fields + " make " + std::to_string(all_fibers) + " fibers, which need about " +
         std::to_string(needed) +
         " memory mappings (two per fiber, plus the rest of the process), above the OS limit "
         "vm.max_map_count = " +
         std::to_string(map_limit) + ". Lower these fields so that they add up to at most " +
         std::to_string(fit) + " (the largest is " + largest + " = " +
         std::to_string(largest_count) + "), or raise the limit (sysctl vm.max_map_count)");
}

/// The checks of Config::stack_classes (validate_config). Errors: Error (InvalidConfig).
void check_stack_classes(const Config& config) {
  if (config.stack_classes.size() >= kMaxStackClasses) {
    reject("Config::stack_classes holds " + std::to_string(config.stack_classes.size()) +
           " classes; at most " + std::to_string(kMaxStackClasses - 1) +
           " fit beside the default one");
  }
  for (std::size_t i = 0; i < config.stack_classes.size(); ++i) {
    const StackClass& stack_class = config.stack_classes[i];
    const std::string field = "Config::stack_classes[" + std::to_string(i) + "]";
    if (stack_class.name.is_null()) {
      reject(field + ".name is a null pointer; name the class (a non-empty string)");
    }
    if (stack_class.name.empty()) reject(field + ".name is empty; name the class");
    if (stack_class.stack_size < Config::kMinFiberStackSize ||
        stack_class.stack_size > kMaxStackBytes) {
      reject(field + ".stack_size = " + std::to_string(stack_class.stack_size) +
             " bytes; it must be in [" + std::to_string(Config::kMinFiberStackSize) + ", " +
             std::to_string(kMaxStackBytes) + "] bytes");
    }
    if (stack_class.max_fiber_count == 0 || stack_class.max_fiber_count > kMaxFibers) {
      reject(field + ".max_fiber_count = " + std::to_string(stack_class.max_fiber_count) +
             "; it must be in [1, " + std::to_string(kMaxFibers) + "]");
    }
    if (stack_class.fiber_count > stack_class.max_fiber_count) {
      reject(field + ".fiber_count = " + std::to_string(stack_class.fiber_count) +
             "; it must be in [0, " + field +
             ".max_fiber_count = " + std::to_string(stack_class.max_fiber_count) + "]");
    }
  }
}

/// The checks of the tracing fields (validate_config). Errors: Error (InvalidConfig).
void check_tracing(const Config& config) {
  if (config.tracing && (config.trace_events_per_worker == 0 ||
                         config.trace_events_per_worker > (std::size_t{1} << 26))) {
    reject("Config::trace_events_per_worker = " + std::to_string(config.trace_events_per_worker) +
           "; with Config::tracing on it must be in [1, 2^26]");
  }
  if (config.tracing) {
    // Every worker and attachable slot gets a buffer up front, the non-worker track one on
    // first use: bound the sum, not only each.
    const std::size_t buffers = std::size_t{config.worker_count} + config.attachable_threads + 1;
    const std::size_t total_bytes = config.trace_events_per_worker * buffers * kTraceEventBytes;
    const std::size_t limit_bytes = physical_memory_bytes() / 2;
    if (total_bytes > limit_bytes) {
      reject("tracing needs Config::trace_events_per_worker (" +
             std::to_string(config.trace_events_per_worker) + ") x (Config::worker_count + " +
             "Config::attachable_threads + 1 = " + std::to_string(buffers) + ") x " +
             std::to_string(kTraceEventBytes) + " bytes = " + std::to_string(total_bytes >> 20) +
             " MiB of trace buffers, more than half of this machine's physical memory (" +
             std::to_string(limit_bytes >> 20) +
             " MiB); lower Config::trace_events_per_worker or Config::worker_count");
    }
  }
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
  const std::uint32_t min_fibers = config.worker_count + config.attachable_threads + 1;
  if (config.max_fiber_count < min_fibers || config.max_fiber_count > kMaxFibers) {
    reject("Config::max_fiber_count = " + std::to_string(config.max_fiber_count) +
           "; it must be in [Config::worker_count + Config::attachable_threads + 1 = " +
           std::to_string(min_fibers) + ", " + std::to_string(kMaxFibers) +
           "] (each worker runs on one fiber; each suspended plain job holds one more)");
  }
  if (config.fiber_count == 0 || config.fiber_count > config.max_fiber_count) {
    reject(
        "Config::fiber_count = " + std::to_string(config.fiber_count) +
        "; it must be in [1, Config::max_fiber_count = " + std::to_string(config.max_fiber_count) +
        "] (the fibers kept warm; the pool grows past them on demand)");
  }
  check_mappings(config);
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
  check_stack_classes(config);
  if (config.max_blocking_threads == 0 || config.max_blocking_threads > kMaxWorkers) {
    reject("Config::max_blocking_threads = " + std::to_string(config.max_blocking_threads) +
           "; it must be in [1, " + std::to_string(kMaxWorkers) + "]");
  }
  if (config.idle_policy != IdlePolicy::Park && config.idle_policy != IdlePolicy::Spin) {
    reject("Config::idle_policy has an unknown value; use IdlePolicy::Park or IdlePolicy::Spin");
  }
  check_tracing(config);
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  checked.fiber_stack_size = (config.fiber_stack_size + page - 1) / page * page;
  for (StackClass& stack_class : checked.stack_classes) {
    stack_class.stack_size = (stack_class.stack_size + page - 1) / page * page;
  }
  return checked;
}

}  // namespace detail
}  // namespace fiberjob
