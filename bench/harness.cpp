// Definitions shared by every system: reference results, the parallel_for kernel, and the wait
// for the other threads of the process to fall quiet between two systems' runs.

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
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

namespace {

/// The name ("TID comm") of a thread of this process other than the caller that is running or
/// runnable ('R' in /proc/self/task/TID/stat; every other state is asleep, blocked or stopped);
/// empty when there is none.
std::string another_thread_runs() {
  const std::string self = std::to_string(gettid());
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return {};  // no procfs: nothing to wait for
  std::string runs;
  while (const dirent* entry = readdir(dir)) {
    const std::string tid = entry->d_name;
    if (tid == "." || tid == ".." || tid == self) continue;
    std::ifstream stat("/proc/self/task/" + tid + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;  // the thread exited meanwhile
    // "TID (comm) S ...": comm may hold spaces and parentheses, the state follows the last ')'.
    const auto paren = line.rfind(')');
    if (paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'R') {
      runs = line.substr(0, paren + 1);
      break;
    }
  }
  closedir(dir);
  return runs;
}

}  // namespace

double wait_for_quiet_threads(double timeout_ns, std::string* busy_thread) {
  const Stopwatch watch;
  for (std::string busy = another_thread_runs(); !busy.empty(); busy = another_thread_runs()) {
    if (watch.ns() > timeout_ns) {
      if (busy_thread != nullptr) *busy_thread = busy;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return watch.ns();
}

}  // namespace bench
