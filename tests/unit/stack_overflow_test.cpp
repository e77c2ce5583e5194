// Stack overflow in a job: the guard page catches it and the process reports "fiber stack
// overflow" naming Config::fiber_stack_size, instead of a bare segfault (child process).

#include <doctest/doctest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>

extern char** environ;

TEST_SUITE("stack_overflow") {
  TEST_CASE("a job overflowing its fiber stack is reported by name, then the process dies") {
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDERR_FILENO);
    posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
    char path[] = FIBERJOB_STACK_OVERFLOW_CHILD;
    char* argv[] = {path, nullptr};
    pid_t child = 0;
    REQUIRE(posix_spawn(&child, path, &actions, nullptr, argv, environ) == 0);
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    std::string output;
    char buffer[4096];
    for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) {
      output.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(pipe_fds[0]);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    INFO("child stderr: " << output);
    CHECK(output.find("fiberjob: fiber stack overflow in fiber #") != std::string::npos);
    CHECK(output.find("Config::fiber_stack_size = 16384 bytes") != std::string::npos);
    CHECK(WIFSIGNALED(status));
    if (WIFSIGNALED(status)) CHECK(WTERMSIG(status) == SIGSEGV);
  }
}
