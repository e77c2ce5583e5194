#pragma once
// Watchdog: turns a hang into a failure with a message. doctest::timeout only judges a test
// after it returns, which a hung test never does; this thread aborts the process instead.

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include <fiberjob/diagnostics.hpp>

namespace fiberjob::test {

class Watchdog {
 public:
  /// Aborts the process with `what`, after a report of every live job system
  /// (write_diagnostics), if not destroyed within `limit`.
  Watchdog(std::string what, std::chrono::seconds limit) : what_(std::move(what)) {
    thread_ = std::thread([this, limit] {
      std::unique_lock lock(mutex_);
      if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
        std::fprintf(stderr, "WATCHDOG: '%s' did not finish within %lld s: hang\n", what_.c_str(),
                     static_cast<long long>(limit.count()));
        write_diagnostics(stderr);  // what every live job system is doing, for the CI log
        std::fflush(stderr);
        std::abort();
      }
    });
  }
  ~Watchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::string what_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace fiberjob::test
