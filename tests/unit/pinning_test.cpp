// Config::pin_workers under a restricted affinity mask (as under `taskset -c N`): workers are
// pinned to the CPUs the mask allows, and a mask with too few CPUs is rejected by name.

#include <doctest/doctest.h>
#include <pthread.h>
#include <sched.h>
#include <fiberjob/fiberjob.hpp>

#include <string>
#include <vector>

using namespace fiberjob;

namespace {

std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  REQUIRE(sched_getaffinity(0, sizeof set, &set) == 0);
  std::vector<int> cpus;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  }
  return cpus;
}

/// Restricts the calling thread (whose mask the job system's workers inherit and the pinning
/// reads) to `cpus` while alive, as `taskset` does for a whole process.
class RestrictedAffinity {
 public:
  explicit RestrictedAffinity(const std::vector<int>& cpus) {
    REQUIRE(pthread_getaffinity_np(pthread_self(), sizeof saved_, &saved_) == 0);
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int cpu : cpus) CPU_SET(cpu, &set);
    REQUIRE(pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0);
  }
  ~RestrictedAffinity() { pthread_setaffinity_np(pthread_self(), sizeof saved_, &saved_); }
  RestrictedAffinity(const RestrictedAffinity&) = delete;
  RestrictedAffinity& operator=(const RestrictedAffinity&) = delete;

 private:
  cpu_set_t saved_;
};

}  // namespace

TEST_SUITE("pinning") {
  TEST_CASE("pinned workers stay within the CPUs the affinity mask allows") {
    const std::vector<int> cpus = allowed_cpus();
    if (cpus.size() < 2) {
      MESSAGE("needs 2 allowed CPUs to restrict the mask to one that is not CPU 0; skipped");
      return;
    }
    const int only = cpus.back();  // not the first CPU: worker 0 must not land on CPUs[0]
    RestrictedAffinity restricted({only});
    Config config;
    config.worker_count = 1;
    config.pin_workers = true;
    JobSystem js{config};
    std::vector<int> seen;
    Counter done;
    js.run(done, [&seen] { seen = allowed_cpus(); });
    js.wait(done);
    CHECK(seen == std::vector<int>{only});
  }

  TEST_CASE("pinning more workers than the affinity mask allows is rejected naming the fields") {
    const std::vector<int> cpus = allowed_cpus();
    RestrictedAffinity restricted({cpus.front()});
    Config config;
    config.worker_count = 2;
    config.pin_workers = true;
    std::string message;
    try {
      JobSystem js{config};
    } catch (const Error& error) {
      CHECK(error.code() == ErrorCode::InvalidConfig);
      message = error.what();
    }
    INFO(message);
    CHECK(message.find("Config::pin_workers") != std::string::npos);
    CHECK(message.find("Config::worker_count = 2") != std::string::npos);
    CHECK(message.find("allows only 1") != std::string::npos);
  }
}
