#pragma once
// Memory of this process as Linux reports it (resident set, peak resident set), and running a
// copy of this benchmark binary as a child process: the memory workloads (7) measure in fresh
// children, because the peak resident set is per process and only grows, and because memory
// that earlier workloads freed but kept resident would hide new growth.

#include <cstdint>
#include <string>
#include <vector>

namespace bench::memory {

/// Resident set of this process now, in bytes (/proc/self/statm, resident pages x page size).
/// Throws std::runtime_error when it cannot be read.
[[nodiscard]] std::int64_t resident_bytes();

/// Peak resident set of this process in bytes (VmHWM in /proc/self/status): the maximum since
/// the process started, or since the last successful `reset_peak()`. Throws std::runtime_error
/// when it cannot be read.
[[nodiscard]] std::int64_t peak_resident_bytes();

/// Sets the peak resident set to the current resident set (writes 5 to /proc/self/clear_refs,
/// Linux 4.0 and later). Returns false when the kernel refused: the peak then keeps counting from
/// the process start.
bool reset_peak() noexcept;

/// Runs this binary (/proc/self/exe) with `args`, waits for it, and returns what it wrote to
/// standard output; its standard error goes to ours. Throws std::runtime_error when the child
/// cannot be started or does not exit with status 0.
[[nodiscard]] std::string run_self(const std::vector<std::string>& args);

}  // namespace bench::memory
