// Resident-set readings from /proc and the child processes of the memory workloads.

#include "process_memory.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;  // POSIX: the environment, passed on to the child

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

namespace {

// The path of this benchmark binary, to start a copy of it.
std::string own_executable() {
  char path[PATH_MAX];
  const ssize_t length = ::readlink("/proc/self/exe", path, sizeof path - 1);
  if (length <= 0) throw std::runtime_error("cannot read /proc/self/exe");
  path[length] = '\0';
  return path;
}

// Starts `argv` (argv[0] is the binary, the list ends in nullptr) with its stdout on `stdout_fd`.
// Returns 0 and sets `child`, or returns the error number of the step that failed.
// posix_spawn, not fork: glibc starts the child with clone(CLONE_VM | CLONE_VFORK), so the
// parent's address space is not duplicated. A fork charges a copy of every private writable
// mapping against the kernel's overcommit limit, and after the peers' workloads the parent
// may hold gigabytes of freed-but-kept allocator heap (Boost.Fiber's skynet peaks at 1.3-2.5
// GB), which can make the fork fail.
int spawn_with_stdout(char* const* argv, int stdout_fd, pid_t& child) {
  posix_spawn_file_actions_t actions;
  int spawned = posix_spawn_file_actions_init(&actions);
  if (spawned != 0) return spawned;
  // The child's stdout becomes the pipe (dup2 clears CLOEXEC on the copy); without this
  // action it would write its report into our own stdout, so a failure here is fatal.
  spawned = posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
  if (spawned == 0) spawned = ::posix_spawn(&child, argv[0], &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  return spawned;
}

// Appends everything `fd` yields until its end to `output`. Returns 0, or the errno of a failed
// read (what was read before it stays in `output`).
int read_to_end(int fd, std::string& output) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      output.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0) {
      return 0;
    } else if (errno != EINTR) {
      return errno;
    }
  }
}

// Waits for `child` to end and returns its wait status; throws if waitpid fails.
int wait_for(pid_t child, const std::string& command) {
  int status = 0;
  pid_t waited = 0;
  while ((waited = ::waitpid(child, &status, 0)) < 0 && errno == EINTR) {
  }
  if (waited < 0) {
    throw std::runtime_error("waitpid for '" + command + "' failed: " + std::strerror(errno));
  }
  return status;
}

// Throws unless wait status `status` says the child exited with status 0.
void check_exited_cleanly(int status, const std::string& command) {
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("memory child '" + command + "' failed (" +
                             (WIFSIGNALED(status)
                                  ? "signal " + std::to_string(WTERMSIG(status))
                                  : "exit status " + std::to_string(WEXITSTATUS(status))) +
                             ")");
  }
}

}  // namespace

std::string run_self(const std::vector<std::string>& args) {
  std::string path = own_executable();
  std::vector<std::string> owned = args;
  std::vector<char*> argv;
  argv.push_back(path.data());
  for (std::string& arg : owned) argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::string command = path;
  for (const std::string& arg : args) command += " " + arg;

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    throw std::runtime_error(std::string("pipe2 failed: ") + std::strerror(errno));
  }
  pid_t child = 0;
  const int spawned = spawn_with_stdout(argv.data(), out[1], child);
  ::close(out[1]);
  if (spawned != 0) {
    ::close(out[0]);
    throw std::runtime_error("cannot start '" + command + "': " + std::strerror(spawned));
  }
  std::string output;
  const int read_error = read_to_end(out[0], output);
  ::close(out[0]);
  const int status = wait_for(child, command);
  if (read_error != 0) {
    throw std::runtime_error("reading the report of '" + command +
                             "' failed: " + std::strerror(read_error));
  }
  check_exited_cleanly(status, command);
  return output;
}

}  // namespace bench::memory
