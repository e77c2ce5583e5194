#pragma once
// Runs a death test's child program and collects what it wrote and how it ended.
//
// In a cross build the child is a foreign binary, which the kernel cannot execute without a
// binfmt_misc registration: it is started through FIBERJOB_CHILD_LAUNCHER, the build's
// CMAKE_CROSSCOMPILING_EMULATOR (empty in a native build; tests/CMakeLists.txt defines it).

#include <doctest/doctest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

extern char** environ;

namespace fiberjob::test {

struct ChildResult {
  std::string output;  ///< Everything the child wrote to stdout and stderr, interleaved.
  int status = 0;      ///< As from waitpid.
};

/// Runs `program` with `args` (through the launcher in a cross build) and waits for it.
inline ChildResult run_child(std::string program, std::vector<std::string> args = {}) {
  std::vector<std::string> command;
  if (const std::string launcher = FIBERJOB_CHILD_LAUNCHER; !launcher.empty()) {
    command.push_back(launcher);
  }
  command.push_back(std::move(program));
  command.insert(command.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& word : command) argv.push_back(word.data());
  argv.push_back(nullptr);

  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  pid_t child = 0;
  const int spawned = posix_spawn(&child, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (spawned != 0) ::close(pipe_fds[0]);
  INFO("starting " << argv[0]);
  REQUIRE(spawned == 0);
  ChildResult result;
  char buffer[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) {
    result.output.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  REQUIRE(::waitpid(child, &result.status, 0) == child);
  return result;
}

}  // namespace fiberjob::test
