// Stack overflow in a job: the guard page catches it and the process reports "fiber stack
// overflow" naming Config::fiber_stack_size, instead of a bare segfault (child process).

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <csignal>
#include <string>

#include "support/child_process.hpp"

TEST_SUITE("stack_overflow") {
  TEST_CASE("a job overflowing its fiber stack is reported by name, then the process dies") {
    const fiberjob::test::ChildResult child =
        fiberjob::test::run_child(FIBERJOB_STACK_OVERFLOW_CHILD);
    INFO("child output: " << child.output);
    CHECK(child.output.find("fiberjob: fiber stack overflow in fiber #") != std::string::npos);
    CHECK(child.output.find("Config::fiber_stack_size = 16384 bytes") != std::string::npos);
    CHECK(WIFSIGNALED(child.status));
    if (WIFSIGNALED(child.status)) CHECK(WTERMSIG(child.status) == SIGSEGV);
  }

  TEST_CASE("an overflow on a fiber of an extra stack class names the class") {
    const fiberjob::test::ChildResult child =
        fiberjob::test::run_child(FIBERJOB_STACK_OVERFLOW_CHILD, {"class"});
    INFO("child output: " << child.output);
    CHECK(child.output.find("of stack class 'deep'") != std::string::npos);
    CHECK(child.output.find("Config::stack_classes[0].stack_size = 65536 bytes") !=
          std::string::npos);
    CHECK(WIFSIGNALED(child.status));
    if (WIFSIGNALED(child.status)) CHECK(WTERMSIG(child.status) == SIGSEGV);
  }
}
