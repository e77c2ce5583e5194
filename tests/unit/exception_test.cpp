// Exceptions: a throwing job still signals its counter, the waiter gets the first exception,
// and the system keeps running.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

/// A job whose k-th copy (counted from `copies`) throws; counts its runs and live objects.
struct CopyThrowsAt {
  std::atomic<int>* copies;
  std::atomic<int>* alive;
  std::atomic<int>* ran;
  int throw_at;

  CopyThrowsAt(std::atomic<int>& c, std::atomic<int>& a, std::atomic<int>& r, int k)
      : copies(&c), alive(&a), ran(&r), throw_at(k) {
    alive->fetch_add(1);
  }
  CopyThrowsAt(const CopyThrowsAt& other)
      : copies(other.copies), alive(other.alive), ran(other.ran), throw_at(other.throw_at) {
    if (copies->fetch_add(1) + 1 == throw_at) throw std::runtime_error("copy failed");
    alive->fetch_add(1);
  }
  CopyThrowsAt(CopyThrowsAt&& other) noexcept
      : copies(other.copies), alive(other.alive), ran(other.ran), throw_at(other.throw_at) {
    alive->fetch_add(1);
  }
  CopyThrowsAt& operator=(const CopyThrowsAt&) = delete;
  ~CopyThrowsAt() { alive->fetch_sub(1); }
  void operator()() const { ran->fetch_add(1); }
};

}  // namespace

TEST_SUITE("exceptions") {
  TEST_CASE("run and spawn of a span whose k-th copy throws add and queue nothing") {
    test::Watchdog watchdog("span copy throws", 60s);
    JobSystem js{test::config_with(2)};
    for (const int k : {1, 64, 65, 100, 200}) {  // in the first chunk of 64 and after it
      CAPTURE(k);
      std::atomic<int> copies{0};
      std::atomic<int> alive{0};
      std::atomic<int> ran{0};
      std::vector<CopyThrowsAt> jobs;
      jobs.reserve(200);
      for (int i = 0; i < 200; ++i) jobs.emplace_back(copies, alive, ran, k);
      const int originals = alive.load();
      Counter done;
      CHECK_THROWS_AS(js.run(done, std::span<CopyThrowsAt>(jobs)), std::runtime_error);
      CHECK(done.pending() == 0);        // nothing added
      CHECK(alive.load() == originals);  // every copy made was destroyed
      // From a job: Context::spawn has the same guarantee.
      copies.store(0);
      Counter outer;
      js.run(outer, [&](Context& ctx) {
        Counter inner;
        CHECK_THROWS_AS(ctx.spawn(inner, std::span<CopyThrowsAt>(jobs)), std::runtime_error);
        CHECK(inner.pending() == 0);
      });
      js.wait(outer);
      CHECK(alive.load() == originals);
      std::this_thread::sleep_for(1ms);
      CHECK(ran.load() == 0);  // no job of either span ever ran
    }
  }

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
