// Misuse that cannot be reported by an exception (destructors, noexcept signals) must stop the
// process with a message naming the mistake, not corrupt memory or hang (child processes).

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <csignal>
#include <string>

#include "support/child_process.hpp"

namespace {

void check_aborts_with(const char* mode, const char* message) {
  const fiberjob::test::ChildResult result =
      fiberjob::test::run_child(FIBERJOB_MISUSE_CHILD, {mode});
  INFO("mode " << mode << ", child output: " << result.output);
  CHECK(result.output.find(message) != std::string::npos);
  CHECK(WIFSIGNALED(result.status));
  if (WIFSIGNALED(result.status)) CHECK(WTERMSIG(result.status) == SIGABRT);
}

}  // namespace

TEST_SUITE("misuse") {
  TEST_CASE("a counter signalled more often than added to stops with a message") {
    check_aborts_with("over_signal", "signalled more often than jobs were added");
  }

  TEST_CASE("a counter destroyed with a unit added by hand outstanding stops with a message") {
    check_aborts_with("destroy_pending",
                      "Counter destroyed while units it counts are still pending, and no live "
                      "job system ran jobs on it");
  }

  TEST_CASE("a job system destroyed while a thread is attached stops with a message") {
    check_aborts_with("attached_at_destroy", "destroy the AttachedWorker first");
  }

  TEST_CASE("a job system destroyed with affine jobs pending for its thread stops with a message") {
    check_aborts_with("affine_at_destroy", "runs the thread-affine jobs still queued for it");
  }

  TEST_CASE("an AttachedWorker destroyed on another thread stops with a message") {
    check_aborts_with("detach_elsewhere", "destroy it on its own thread");
  }

  TEST_CASE("a counter destroyed while a job waits on it stops with a message") {
    // Usually reported as "still wait on it"; if the destruction beats the (asynchronous) link,
    // the outstanding unit is reported instead. Either way: stopped, with the counter named.
    check_aborts_with("destroy_waited", "fiberjob: Counter destroyed while");
  }

  TEST_CASE("an event destroyed while a job waits on it stops with a message naming the fix") {
    check_aborts_with("destroy_waited_event",
                      "Event destroyed while jobs, coroutines or threads still wait on it; set()");
  }

  TEST_CASE("a mutex destroyed while a job waits to lock it stops with a message") {
    check_aborts_with("destroy_waited_mutex",
                      "Mutex destroyed while jobs, coroutines or threads "
                      "still wait to lock it; let every lock");
  }

  TEST_CASE("unlocking a mutex nobody locked stops with a message") {
    check_aborts_with("unlock_unowned",
                      "Mutex unlock by a job, coroutine or thread that does not "
                      "own it");
  }

  TEST_CASE("unlocking a mutex another job locked stops with a message") {
    check_aborts_with("unlock_other", "unlock only what you locked");
  }

  TEST_CASE("a job that ends holding a mutex stops with a message instead of passing it on") {
    check_aborts_with("job_ends_locked", "a job ended while holding a Mutex locked with plain");
  }

  TEST_CASE("a coroutine suspending with a plain lock held stops with a message naming the fix") {
    check_aborts_with("coroutine_plain_lock", "co_await m.scoped_lock()");
  }

  TEST_CASE("an event still waited on after its job system is gone: set() lets it go") {
    check_aborts_with("event_after_shutdown",
                      "A job left waiting by a JobSystem destroyed meanwhile never returns: "
                      "set() the event before destroying it");
    const fiberjob::test::ChildResult result =
        fiberjob::test::run_child(FIBERJOB_MISUSE_CHILD, {"event_after_shutdown_set"});
    INFO("child output: " << result.output);
    CHECK(result.output.find("1 fiber(s) still suspended") != std::string::npos);
    CHECK(result.output.find("event destroyed") != std::string::npos);
    CHECK(WIFEXITED(result.status));
    CHECK(WEXITSTATUS(result.status) == 0);
  }

  TEST_CASE("the shutdown report names the primitive each stuck job waits on") {
    const fiberjob::test::ChildResult result =
        fiberjob::test::run_child(FIBERJOB_MISUSE_CHILD, {"stuck_on_primitives"});
    INFO("child output: " << result.output);
    CHECK(result.output.find("waits on Event 0x") != std::string::npos);
    CHECK(result.output.find("waits on Mutex 0x") != std::string::npos);
    CHECK(result.output.find("2 fiber(s) still suspended") != std::string::npos);
    CHECK(WIFEXITED(result.status));
  }
}
