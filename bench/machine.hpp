#pragma once
// The machine the benchmarks run on, and how busy it was: its description for the report, the
// CPU time that other processes and the hypervisor took during the run, and a core-to-core
// latency calibration (machine.cpp).

#include <string>

namespace bench {

/// CPU model, CPU count, memory, kernel, compiler and the date (UTC), read once.
struct Machine {
  std::string cpu;
  unsigned cpus = 0;
  std::string memory;
  std::string kernel;
  std::string compiler;
  std::string date;
  Machine();
};

/// CPU time of the whole machine (busy, from /proc/stat) and of this process (getrusage), to
/// report how much other processes ran during the benchmarks: the machine may be shared.
struct CpuTimes {
  double machine_busy_s = 0;
  double steal_s = 0;  // time the hypervisor ran something else on our virtual CPUs
  double self_s = 0;   // this process and its finished children (the memory workloads')
  static CpuTimes now();
};

/// The machine's core-to-core latency right now: two threads pinned to two different CPUs
/// bounce a cache line (an atomic flag) 100,000 times; the best of 3 trials, in ns per round
/// trip. On a VM this depends on where the host runs our virtual CPUs, and it bounds every
/// cross-worker handoff measured here. The main thread's affinity is restored afterwards.
struct Calibration {
  double round_trip_ns = -1;  // -1: fewer than two CPUs allowed
};
Calibration calibrate_core_to_core();

}  // namespace bench
