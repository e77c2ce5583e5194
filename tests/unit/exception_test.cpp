// Exceptions: a throwing job still signals its counter, the waiter gets the first exception,
// and the system keeps running.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <stdexcept>
#include <string>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

TEST_SUITE("exceptions") {
  TEST_CASE("a throwing job signals its counter and the thread waiter gets the exception") {
    test::Watchdog watchdog("throwing job", 60s);
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::atomic<int> ran{0};
      Counter done;
      for (int i = 0; i < 100; ++i) {
        js.run(done, [&ran, i] {
          ran.fetch_add(1);
          if (i == 37) throw std::runtime_error("job 37 failed");
        });
      }
      CHECK_THROWS_WITH_AS(js.wait(done), "job 37 failed", std::runtime_error);
      CHECK(ran.load() == 100);  // the other jobs on the counter all ran
      CHECK(done.done());

      // The system keeps running jobs afterwards.
      Counter again;
      std::atomic<int> later{0};
      for (int i = 0; i < 10; ++i) js.run(again, [&later] { later.fetch_add(1); });
      js.wait(again);
      CHECK(later.load() == 10);
    }
  }

  TEST_CASE("a child's exception reaches the parent's wait, which can handle it") {
    test::Watchdog watchdog("child exception", 60s);
    JobSystem js{test::config_with(2)};
    std::string caught;
    Counter done;
    js.run(done, [&caught](Context& ctx) {
      Counter children;
      ctx.spawn(children, [](Context& c) {
        Counter grandchildren;
        c.spawn(grandchildren, [] { throw std::logic_error("deep failure"); });
        this_fiber::wait(grandchildren);  // rethrows: this child fails too
      });
      try {
        this_fiber::wait(children);
      } catch (const std::logic_error& e) {
        caught = e.what();
      }
    });
    js.wait(done);  // the parent handled it: no exception here
    CHECK(caught == "deep failure");
  }

  TEST_CASE("several exceptions on one counter: the first is kept, the rest are counted") {
    test::Watchdog watchdog("several exceptions", 60s);
    JobSystem js{test::config_with(2)};
    Counter done;
    for (int i = 0; i < 5; ++i) js.run(done, [] { throw 42; });
    CHECK_THROWS_AS(js.wait(done), int);
    CHECK(done.dropped_exceptions() == 4);
    // Reusing the counter starts a new round without the old exception.
    js.run(done, [] {});
    CHECK_NOTHROW(js.wait(done));
    CHECK(done.dropped_exceptions() == 0);
  }
}
