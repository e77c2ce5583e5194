#pragma once
// Capturing what the library writes to stderr (the hang watchdog's report).

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace fiberjob::test {

/// Sends this process's stderr (fd 2) to a temporary file while alive.
class CapturedStderr {
 public:
  CapturedStderr() {
    std::fflush(stderr);
    fd_ = ::mkstemp(path_);
    saved_ = ::dup(2);
    ::dup2(fd_, 2);
  }
  ~CapturedStderr() {
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    ::close(fd_);
    ::unlink(path_);
  }
  CapturedStderr(const CapturedStderr&) = delete;
  CapturedStderr& operator=(const CapturedStderr&) = delete;
  /// Everything written to stderr so far.
  [[nodiscard]] std::string text() const {
    std::ifstream in(path_);
    std::stringstream all;
    all << in.rdbuf();
    return all.str();
  }

 private:
  char path_[32] = "/tmp/fiberjob-stderr-XXXXXX";
  int fd_ = -1;
  int saved_ = -1;
};

}  // namespace fiberjob::test
