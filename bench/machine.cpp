// The machine's description, the run's CPU-time accounting and the core-to-core calibration
// (machine.hpp).

#include "machine.hpp"

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <ctime>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

namespace bench {
namespace {

// The value of the first line of `path` that starts with `key` ("key<tabs>: value"), or
// "unknown".
std::string read_first(const char* path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) {
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
  }
  return "unknown";
}

// The CPU's name. x86 kernels give a "model name" line; arm64 kernels give none, only the
// MIDR fields "CPU implementer" and "CPU part" (hex), which this names as lscpu does for the
// common ones and prints as numbers otherwise.
std::string cpu_name() {
  const std::string model = read_first("/proc/cpuinfo", "model name");
  if (model != "unknown") return model;
  const std::string implementer = read_first("/proc/cpuinfo", "CPU implementer");
  if (implementer == "unknown") return model;
  const std::string part = read_first("/proc/cpuinfo", "CPU part");
  struct Name {
    const char* implementer;
    const char* part;  // nullptr: any part of this implementer
    const char* name;
  };
  static const Name kNames[] = {
      {"0x41", "0xd03", "ARM Cortex-A53"},
      {"0x41", "0xd05", "ARM Cortex-A55"},
      {"0x41", "0xd08", "ARM Cortex-A72"},
      {"0x41", "0xd0b", "ARM Cortex-A76"},
      {"0x41", "0xd0c", "ARM Neoverse-N1"},
      {"0x41", "0xd40", "ARM Neoverse-V1"},
      {"0x41", "0xd49", "ARM Neoverse-N2"},
      {"0x41", "0xd4f", "ARM Neoverse-V2"},
      {"0x41", nullptr, "ARM"},
      {"0x61", nullptr, "Apple"},
      {"0x51", nullptr, "Qualcomm"},
      {"0x48", nullptr, "HiSilicon"},
      {"0x4e", nullptr, "NVIDIA"},
      {"0xc0", nullptr, "Ampere"},
  };
  for (const Name& n : kNames) {
    if (implementer != n.implementer) continue;
    if (n.part != nullptr && part != n.part) continue;
    return n.part != nullptr ? std::string(n.name) : std::string(n.name) + " part " + part;
  }
  return "CPU implementer " + implementer + " part " + part;
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

Machine::Machine()
    : cpu(cpu_name()),
      cpus(std::thread::hardware_concurrency()),
      memory(read_first("/proc/meminfo", "MemTotal")),
      compiler(__VERSION__),
      date(utc_now()) {
  utsname u{};
  if (uname(&u) == 0) kernel = std::string(u.sysname) + " " + u.release + " " + u.machine;
}

CpuTimes CpuTimes::now() {
  CpuTimes t;
  std::ifstream stat("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
  stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
  const double tick = static_cast<double>(sysconf(_SC_CLK_TCK));
  t.machine_busy_s = (user + nice + system + irq + softirq) / tick;
  t.steal_s = steal / tick;
  auto seconds = [](const timeval& v) {
    return static_cast<double>(v.tv_sec) + static_cast<double>(v.tv_usec) / 1e6;
  };
  // Ours: this process and its finished children (the memory workloads' child processes).
  for (const int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    rusage u{};
    getrusage(who, &u);
    t.self_s += seconds(u.ru_utime) + seconds(u.ru_stime);
  }
  return t;
}

Calibration calibrate_core_to_core() {
  constexpr int kRoundTrips = 100'000;
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (pthread_getaffinity_np(pthread_self(), sizeof allowed, &allowed) != 0) return {};
  std::vector<int> cpus;
  for (int c = 0; c < CPU_SETSIZE && cpus.size() < 2; ++c) {
    if (CPU_ISSET(c, &allowed)) cpus.push_back(c);
  }
  if (cpus.size() < 2) return {};
  auto pin = [](pthread_t thread, int cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return pthread_setaffinity_np(thread, sizeof one, &one) == 0;
  };
  Calibration best{1e300};
  if (!pin(pthread_self(), cpus[0])) return {};
  for (int trial = 0; trial < 3; ++trial) {
    std::atomic<int> flag{0};  // 1: ping, 0: pong, 2: stop
    std::atomic<bool> ready{false};
    std::thread partner([&] {
      pin(pthread_self(), cpus[1]);
      ready.store(true, std::memory_order_release);
      for (;;) {
        int f = 0;
        while ((f = flag.load(std::memory_order_acquire)) == 0) {
        }
        if (f == 2) return;
        flag.store(0, std::memory_order_release);
      }
    });
    while (!ready.load(std::memory_order_acquire)) std::this_thread::yield();
    const Stopwatch watch;
    int done = 0;
    // At most ~0.2 s per trial: on a busy machine a pinned spinner may share its CPU.
    while (done < kRoundTrips && (done % 1024 != 0 || watch.ns() < 2e8)) {
      flag.store(1, std::memory_order_release);
      while (flag.load(std::memory_order_acquire) != 0) {
      }
      ++done;
    }
    best.round_trip_ns = std::min(best.round_trip_ns, watch.ns() / done);
    flag.store(2, std::memory_order_release);
    partner.join();
  }
  pthread_setaffinity_np(pthread_self(), sizeof allowed, &allowed);  // back to every CPU
  return best;
}

}  // namespace bench
