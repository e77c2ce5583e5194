// fiberjob::asio: Asio coroutines and callbacks wait on counters signalled by jobs; jobs post
// results back to an Asio executor.

#include <doctest/doctest.h>
#include <fiberjob/asio.hpp>
#include <fiberjob/fiberjob.hpp>

#include <asio/bind_executor.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/config.hpp"
#include "support/thread_id.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

#if defined(FIBERJOB_TEST_COUNTS_ALLOCATIONS)
#include "support/count_allocations.hpp"
using fiberjob::test::allocations_on_this_thread;
#endif

TEST_SUITE("asio") {
  TEST_CASE("an Asio coroutine awaits a counter signalled by jobs") {
    test::Watchdog watchdog("asio awaits a counter", 60s);
    JobSystem js{test::config_with(2)};
    ::asio::io_context io;
    std::vector<int> squares(1000, 0);
    long total = -1;
    std::thread::id resumed_on;
    ::asio::co_spawn(
        io,
        [&]() -> ::asio::awaitable<void> {
          Counter parts;
          for (int i = 0; i < 1000; ++i) js.run(parts, [&squares, i] { squares[i] = i * i; });
          co_await fiberjob::asio::async_wait(parts, ::asio::use_awaitable);
          resumed_on = test::current_thread_id();
          total = std::accumulate(squares.begin(), squares.end(), 0L);
        },
        ::asio::detached);
    io.run();  // returns when the coroutine has finished
    CHECK(total == 332'833'500L);
    CHECK(resumed_on == test::current_thread_id());  // completions run on io.run()'s thread
  }

  TEST_CASE("a job's exception reaches the Asio coroutine's co_await") {
    test::Watchdog watchdog("asio exception", 60s);
    JobSystem js{test::config_with(2)};
    ::asio::io_context io;
    std::string caught;
    ::asio::co_spawn(
        io,
        [&]() -> ::asio::awaitable<void> {
          Counter parts;
          js.run(parts, [] { throw std::runtime_error("job failed"); });
          try {
            co_await fiberjob::asio::async_wait(parts, ::asio::use_awaitable);
          } catch (const std::runtime_error& e) {
            caught = e.what();
          }
        },
        ::asio::detached);
    io.run();
    CHECK(caught == "job failed");
  }

  TEST_CASE("a callback completion on an already-zero counter is posted, not run inline") {
    ::asio::io_context io;
    Counter idle;
    bool completed = false;
    fiberjob::asio::async_wait(
        idle, ::asio::bind_executor(io, [&](std::exception_ptr e) { completed = e == nullptr; }));
    CHECK_FALSE(completed);  // nothing runs before the io_context does
    io.run();
    CHECK(completed);
  }

  TEST_CASE("jobs hand results back to an Asio executor, many waits at once") {
    test::Watchdog watchdog("asio round trips", 60s);
    JobSystem js{test::config_with(4)};
    ::asio::io_context io;
    const std::thread::id io_thread = test::current_thread_id();
    std::atomic<int> posted_on_io{0};
    int completions = 0;
    constexpr int kWaits = 200;
    std::vector<Counter> counters(kWaits);
    for (int w = 0; w < kWaits; ++w) {
      for (int j = 0; j < 5; ++j) {
        js.run(counters[w], [&io, &posted_on_io, io_thread] {
          // A job hands its result to the Asio side: posted, runs on io.run()'s thread.
          ::asio::post(io, [&posted_on_io, io_thread] {
            posted_on_io.fetch_add(test::current_thread_id() == io_thread ? 1 : 0);
          });
        });
      }
      fiberjob::asio::async_wait(counters[w], ::asio::bind_executor(io, [&](std::exception_ptr) {
                                   ++completions;  // io thread only: no race
                                 }));
    }
    io.run();
    CHECK(completions == kWaits);
    CHECK(posted_on_io.load() == kWaits * 5);
  }

#if defined(FIBERJOB_TEST_COUNTS_ALLOCATIONS)
  TEST_CASE("the signal that completes an Asio wait allocates nothing (it cannot fail)") {
    // The wake runs in a noexcept callback on the signalling thread: an allocation there
    // could only end in std::terminate. Callback and coroutine completions, with and without
    // an exception kept in the counter.
    ::asio::io_context io;
    constexpr int kWaits = 4;
    Counter counters[kWaits];
    int completions = 0;
    int errors = 0;
    for (int w = 0; w < kWaits; ++w) {
      counters[w].add(1);
      if (w % 2 == 0) {
        fiberjob::asio::async_wait(counters[w],
                                   ::asio::bind_executor(io, [&](std::exception_ptr e) {
                                     ++completions;
                                     errors += e != nullptr ? 1 : 0;
                                   }));
      } else {
        ::asio::co_spawn(
            io,
            [&, w]() -> ::asio::awaitable<void> {
              try {
                co_await fiberjob::asio::async_wait(counters[w], ::asio::use_awaitable);
              } catch (const std::runtime_error&) {
                ++errors;
              }
              ++completions;
            },
            ::asio::detached);
      }
    }
    io.poll();  // the coroutines start and suspend in async_wait
    JobSystem js{test::config_with(1)};
    for (int w = 2; w < kWaits; ++w) {  // two counters keep an exception for their wait
      js.run(counters[w], [] { throw std::runtime_error("job failed"); });
      while (counters[w].pending() != 1) std::this_thread::yield();  // the job has ended
    }
    for (int w = 0; w < kWaits; ++w) {
      CAPTURE(w);
      const long before = allocations_on_this_thread();
      counters[w].signal();  // the last unit: this thread completes the wait
      CHECK(allocations_on_this_thread() == before);
    }
    io.run();
    CHECK(completions == kWaits);
    CHECK(errors == 2);
  }
#endif
}
