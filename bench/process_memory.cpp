// Resident-set readings from /proc and the child processes of the memory workloads.

#include "process_memory.hpp"

#include <fcntl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace bench::memory {

std::int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t size_pages = 0;
  std::int64_t resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages)) {
    throw std::runtime_error("cannot read /proc/self/statm");
  }
  return resident_pages * static_cast<std::int64_t>(::sysconf(_SC_PAGESIZE));
}

std::int64_t peak_resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      std::int64_t kib = 0;
      if (fields >> kib) return kib * 1024;
    }
  }
  throw std::runtime_error("cannot read VmHWM from /proc/self/status");
}

bool reset_peak() noexcept {
  const int fd = ::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, "5", 1) == 1;
  ::close(fd);
  return ok;
}

std::string run_self(const std::vector<std::string>& args) {
  char path[PATH_MAX];
  const ssize_t length = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (length <= 0) throw std::runtime_error("cannot read /proc/self/exe");
  path[length] = '\0';
  // Everything the child needs is built before fork: between fork and exec it may only make
  // async-signal-safe calls (other threads of ours may hold the allocator's locks).
  std::vector<std::string> owned = args;
  std::vector<char*> argv;
  argv.push_back(path);
  for (std::string& arg : owned) argv.push_back(arg.data());
  argv.push_back(nullptr);

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  const pid_t child = ::fork();
  if (child < 0) {
    ::close(out[0]);
    ::close(out[1]);
    throw std::runtime_error("fork failed");
  }
  if (child == 0) {
    if (::dup2(out[1], STDOUT_FILENO) < 0) ::_exit(126);  // dup2 clears CLOEXEC on the copy
    ::execv(path, argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string output;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(out[0], buffer, sizeof buffer);
    if (n > 0) {
      output.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("memory child '" + (args.empty() ? std::string() : args[0]) + " " +
                             (args.size() > 1 ? args[1] : std::string()) + " " +
                             (args.size() > 2 ? args[2] : std::string()) + "' failed (status " +
                             std::to_string(status) + ")");
  }
  return output;
}

}  // namespace bench::memory
