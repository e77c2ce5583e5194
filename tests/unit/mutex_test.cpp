// Mutex (Lockable for plain jobs and threads, co_await scoped_lock for coroutines),
// ConditionVariable over it, and Semaphore. Ports, in spirit, of Boost.Fiber's mutex and
// condition tests, FiberTaskingLib's fibtex test and marl's condition-variable test.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "support/config.hpp"
#include "support/detached.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

test::Detached acquire_then_count(Semaphore& semaphore, std::atomic<int>& through) {
  co_await semaphore.acquire_async();
  through.fetch_add(1);
}

/// Locks `mutex` with plain lock(), from code called by a coroutine that holds it.
void plain_lock_below(Mutex& mutex, std::atomic<int>& errors) {
  try {
    std::scoped_lock again(mutex);
  } catch (const Error& error) {
    if (error.code() == ErrorCode::SyncMisuse) errors.fetch_add(1);
  }
}

/// marl's Ticket::Queue (marl/include/marl/ticket.h) on fiberjob's primitives: take() hands out
/// tickets in order; a ticket's holder waits for its turn, which comes when every ticket taken
/// before it is done. Each ticket is an Event (its turn) and a link to the next one; the queue's
/// tail is guarded by a fiberjob::Mutex (plain lock: the sections never suspend).
class TicketQueue {
 public:
  struct Ticket {
    Event turn;
    Ticket* next = nullptr;
    bool done = false;
  };

  /// A new ticket, after every ticket taken so far (its turn is set when it is first).
  Ticket& take() {
    std::scoped_lock lock(mutex_);
    Ticket& ticket = tickets_.emplace_back();
    if (tail_ == nullptr || tail_->done) {
      ticket.turn.set();
    } else {
      tail_->next = &ticket;
    }
    tail_ = &ticket;
    return ticket;
  }

  /// Ends `ticket`'s turn: the next ticket's holder goes on.
  void done(Ticket& ticket) {
    std::scoped_lock lock(mutex_);
    ticket.done = true;
    if (ticket.next != nullptr) ticket.next->turn.set();
  }

 private:
  Mutex mutex_;
  std::deque<Ticket> tickets_;  // stable addresses
  Ticket* tail_ = nullptr;
};

}  // namespace

TEST_SUITE("mutex") {
  TEST_CASE("try_lock fails while held, and unlock frees it") {
    Mutex mutex;
    CHECK(mutex.try_lock());
    std::thread other([&] { CHECK_FALSE(mutex.try_lock()); });
    other.join();
    mutex.unlock();
    CHECK(mutex.try_lock());
    mutex.unlock();
  }

  TEST_CASE("locking a mutex the caller owns throws instead of waiting forever") {
    JobSystem js{test::config_with(1)};
    Mutex mutex;
    std::atomic<int> errors{0};
    Counter done;
    js.run(done, [&] {
      std::scoped_lock lock(mutex);
      try {
        mutex.lock();
      } catch (const Error& error) {
        if (error.code() == ErrorCode::SyncMisuse) errors.fetch_add(1);
      }
    });
    js.run(done, [&](Context&) -> Task<> {
      auto guard = co_await mutex.scoped_lock();
      try {
        auto again = co_await mutex.scoped_lock();
      } catch (const Error& error) {
        if (error.code() == ErrorCode::SyncMisuse) errors.fetch_add(1);
      }
    });
    js.wait(done);
    CHECK(errors.load() == 2);
    mutex.lock();  // a plain thread: also rejected when it owns it
    CHECK_THROWS_AS(mutex.lock(), Error);
    mutex.unlock();
  }

  TEST_CASE("a coroutine holding the guard that calls plain lock() below throws, not hangs") {
    test::Watchdog watchdog("guard holder locks again", 60s);
    JobSystem js{test::config_with(2)};
    Mutex mutex;
    std::atomic<int> errors{0};
    Counter done;
    js.run(done, [&](Context& ctx) -> Task<> {
      auto guard = co_await mutex.scoped_lock();
      plain_lock_below(mutex, errors);  // same stack, not suspended since: would never return
      co_await ctx.yield();             // suspended since: now another segment
      guard.unlock();
      plain_lock_below(mutex, errors);  // free again: locks and unlocks
    });
    js.wait(done);
    CHECK(errors.load() == 1);
    // Another job's plain lock of a mutex a suspended coroutine holds waits, as it should.
    Event held;
    Event release;
    std::atomic<bool> locked{false};
    js.run(done, [&](Context&) -> Task<> {
      auto guard = co_await mutex.scoped_lock();
      held.set();
      co_await release;
    });
    this_fiber::wait(held);
    js.run(done, [&] {
      std::scoped_lock lock(mutex);
      locked.store(true);
    });
    std::this_thread::sleep_for(5ms);
    CHECK_FALSE(locked.load());
    release.set();
    js.wait(done);
    CHECK(locked.load());
  }

  TEST_CASE("plain lock() in a coroutine job holding the guard throws also after a suspension") {
    test::Watchdog watchdog("guard holder locks again after a co_await", 60s);
    for (const std::uint32_t workers : {1u, 2u}) {
      JobSystem js{test::config_with(workers)};
      Mutex mutex;
      std::atomic<int> errors{0};
      Counter done;
      js.run(done, [&](Context& ctx) -> Task<> {
        auto guard = co_await mutex.scoped_lock();
        co_await ctx.yield();             // resumes in another run segment, maybe elsewhere
        plain_lock_below(mutex, errors);  // would wait for this very job forever
        co_await [&]() -> Task<> {        // so would a child task of the job
          plain_lock_below(mutex, errors);
          co_return;
        }();
        guard.unlock();
        plain_lock_below(mutex, errors);  // free again: locks and unlocks
      });
      js.wait(done);
      CHECK(errors.load() == 2);
    }
  }

  TEST_CASE("a guard that outlives its coroutine job makes the next job wait, not fail") {
    // Coroutine frames are recycled: the next job may get the same frame address. The owner is
    // the job, so the next job is not mistaken for the owner.
    test::Watchdog watchdog("escaped guard", 60s);
    JobSystem js{test::config_with(1)};
    Mutex mutex;
    std::optional<MutexGuard> escaped;
    Counter done;
    js.run(done, [&](Context&) -> Task<> { escaped.emplace(co_await mutex.scoped_lock()); });
    js.wait(done);
    std::atomic<int> errors{0};
    std::atomic<bool> locked{false};
    for (int i = 0; i < 4; ++i) {  // the first of them gets the recycled frame
      js.run(done, [&](Context&) -> Task<> {
        try {
          auto guard = co_await mutex.scoped_lock();
          locked.store(true);
        } catch (const Error&) {
          errors.fetch_add(1);
        }
      });
    }
    std::this_thread::sleep_for(5ms);
    CHECK(errors.load() == 0);
    CHECK_FALSE(locked.load());  // they wait for the escaped guard
    escaped.reset();             // unlocks: the waiters get the mutex in turn
    js.wait(done);
    CHECK(errors.load() == 0);
    CHECK(locked.load());
  }

  TEST_CASE("tickets (marl's Ticket::Queue) serve their holders in the order they were taken") {
    test::Watchdog watchdog("ticket queue", 60s);
    for (const std::uint32_t workers : test::kWorkerCounts) {
      JobSystem js{test::config_with(workers)};
      TicketQueue queue;
      Mutex order_mutex;
      std::vector<int> order;
      Counter done;
      constexpr int kTickets = 200;
      for (int i = 0; i < kTickets; ++i) {
        TicketQueue::Ticket& ticket = queue.take();  // taken in order, here
        if (i % 2 == 0) {
          js.run(done, [&, i] {  // plain job: its fiber waits for the turn
            this_fiber::wait(ticket.turn);
            {
              std::scoped_lock lock(order_mutex);
              order.push_back(i);
            }
            queue.done(ticket);
          });
        } else {
          js.run(done, [&, i](Context&) -> Task<> {  // coroutine job: suspends alone
            co_await ticket.turn;
            {
              auto guard = co_await order_mutex.scoped_lock();
              order.push_back(i);
            }
            queue.done(ticket);
          });
        }
      }
      js.wait(done);
      REQUIRE(order.size() == kTickets);
      for (int i = 0; i < kTickets; ++i) CHECK(order[static_cast<std::size_t>(i)] == i);
    }
  }

  TEST_CASE("plain and coroutine jobs mixed never overlap in the critical section") {
    test::Watchdog watchdog("mutex exclusion", 120s);
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Mutex mutex;
      std::atomic<int> inside{0};
      std::atomic<int> overlaps{0};
      long long total = 0;  // guarded by `mutex` only
      constexpr int kJobs = 64;
      constexpr int kRounds = 100;
      auto critical = [&] {
        if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
        const long long seen = total;
        if (seen % 7 == 0) std::this_thread::yield();  // widen the window
        total = seen + 1;
        inside.fetch_sub(1);
      };
      Counter done;
      for (int j = 0; j < kJobs; ++j) {
        if (j % 2 == 0) {
          js.run(done, [&] {
            for (int r = 0; r < kRounds; ++r) {
              std::scoped_lock lock(mutex);
              critical();
              if (r % 10 == 0) this_fiber::yield();  // suspend while holding it
            }
          });
        } else {
          js.run(done, [&](Context& ctx) -> Task<> {
            for (int r = 0; r < kRounds; ++r) {
              auto guard = co_await mutex.scoped_lock();
              critical();
              if (r % 10 == 0) co_await ctx.yield();  // migrate while holding it
            }
          });
        }
      }
      std::thread thread_locker([&] {
        for (int r = 0; r < kRounds; ++r) {
          std::scoped_lock lock(mutex);
          critical();
        }
      });
      js.wait(done);
      thread_locker.join();
      CHECK(overlaps.load() == 0);
      CHECK(total == static_cast<long long>(kJobs + 1) * kRounds);
    }
  }

  TEST_CASE("the mutex is handed to waiters in the order they queued (FIFO, no barging)") {
    test::Watchdog watchdog("mutex fifo", 60s);
    JobSystem js{test::config_with(1)};
    Mutex mutex;
    mutex.lock();  // held by this thread while the jobs queue
    std::vector<int> order;
    Counter done;
    for (int i = 0; i < 6; ++i) {
      js.run(done, [&, i] {
        std::scoped_lock lock(mutex);
        order.push_back(i);
      });
      while (js.stats().fibers_in_use < static_cast<std::size_t>(2 + i)) std::this_thread::yield();
      std::this_thread::sleep_for(5ms);  // its link is done before the next job queues
    }
    CHECK_FALSE(mutex.try_lock());  // waiters exist: no barging even when it is handed on
    mutex.unlock();
    js.wait(done);
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5});
  }
}

TEST_SUITE("condition variable") {
  TEST_CASE("producer and consumers pass every item exactly once") {
    test::Watchdog watchdog("cv producer consumer", 120s);
    for (std::uint32_t workers : {1u, 2u, 4u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Mutex mutex;
      ConditionVariable not_empty;
      ConditionVariable not_full;
      std::deque<int> queue;  // guarded by mutex
      bool finished = false;
      constexpr int kItems = 4000;
      constexpr std::size_t kCapacity = 8;
      std::vector<std::atomic<int>> received(kItems);
      Counter done;
      auto take = [&](int item) { received[static_cast<std::size_t>(item)].fetch_add(1); };
      for (int c = 0; c < 3; ++c) {
        js.run(done, [&] {  // plain consumer
          std::unique_lock lock(mutex);
          for (;;) {
            not_empty.wait(lock, [&] { return !queue.empty() || finished; });
            if (queue.empty()) return;
            take(queue.front());
            queue.pop_front();
            not_full.notify_one();
          }
        });
        js.run(done, [&](Context&) -> Task<> {  // coroutine consumer
          auto guard = co_await mutex.scoped_lock();
          for (;;) {
            while (queue.empty() && !finished) co_await not_empty.wait(guard);
            if (queue.empty()) co_return;
            take(queue.front());
            queue.pop_front();
            not_full.notify_one();
          }
        });
      }
      js.run(done, [&] {  // producer
        for (int i = 0; i < kItems; ++i) {
          std::unique_lock lock(mutex);
          not_full.wait(lock, [&] { return queue.size() < kCapacity; });
          queue.push_back(i);
          not_empty.notify_one();
        }
        std::scoped_lock lock(mutex);
        finished = true;
        not_empty.notify_all();
      });
      js.wait(done);
      int wrong = 0;
      for (auto& count : received) wrong += count.load() != 1;
      CHECK(wrong == 0);
    }
  }

  TEST_CASE("waiting without owning the mutex is an error") {
    JobSystem js{test::config_with(1)};
    Mutex mutex;
    ConditionVariable cv;
    Counter done;
    std::atomic<int> errors{0};
    js.run(done, [&] {
      std::unique_lock lock(mutex, std::defer_lock);
      try {
        cv.wait(lock);
      } catch (const Error& error) {
        if (error.code() == ErrorCode::SyncMisuse) errors.fetch_add(1);
      }
    });
    js.wait(done);
    CHECK(errors.load() == 1);
  }

  TEST_CASE("waiting with a second mutex while others wait with the first is an error") {
    test::Watchdog watchdog("cv two mutexes", 60s);
    JobSystem js{test::config_with(1)};
    Mutex first;
    Mutex second;
    ConditionVariable cv;
    bool go = false;
    std::atomic<int> errors{0};
    Counter done;
    js.run(done, [&] {
      std::unique_lock lock(first);
      cv.wait(lock, [&] { return go; });
    });
    while (js.stats().fibers_in_use < 2) std::this_thread::yield();
    std::this_thread::sleep_for(5ms);  // the first waiter is linked
    js.run(done, [&] {
      std::unique_lock lock(second);
      try {
        cv.wait(lock);
      } catch (const Error& error) {
        if (error.code() == ErrorCode::SyncMisuse) errors.fetch_add(1);
      }
      std::unique_lock first_lock(first, std::defer_lock);
      lock.unlock();
      first_lock.lock();
      go = true;
      cv.notify_all();
    });
    js.wait(done);
    CHECK(errors.load() == 1);
  }

  TEST_CASE("notify_all wakes every waiter, each owning the mutex in turn") {
    test::Watchdog watchdog("cv notify all", 60s);
    JobSystem js{test::config_with(2)};
    Mutex mutex;
    ConditionVariable cv;
    bool go = false;
    int inside = 0;
    int overlaps = 0;
    int woken = 0;
    Counter done;
    for (int i = 0; i < 50; ++i) {
      js.run(done, [&] {
        std::unique_lock lock(mutex);
        cv.wait(lock, [&] { return go; });
        overlaps += inside++ != 0;
        ++woken;
        --inside;
      });
    }
    std::this_thread::sleep_for(5ms);
    {
      std::scoped_lock lock(mutex);
      go = true;
    }
    cv.notify_all();
    js.wait(done);
    CHECK(woken == 50);
    CHECK(overlaps == 0);
  }
}

TEST_SUITE("semaphore") {
  TEST_CASE("never more holders than permits, and every acquire ends") {
    test::Watchdog watchdog("semaphore bounds", 120s);
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      constexpr int kPermits = 3;
      Semaphore semaphore(kPermits);
      std::atomic<int> holders{0};
      std::atomic<int> most{0};
      std::atomic<int> acquired{0};
      auto hold = [&] {
        const int now = holders.fetch_add(1) + 1;
        for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
        }
        acquired.fetch_add(1);
      };
      Counter done;
      for (int i = 0; i < 200; ++i) {
        if (i % 2 == 0) {
          js.run(done, [&] {
            semaphore.acquire();
            hold();
            this_fiber::yield();
            holders.fetch_sub(1);
            semaphore.release();
          });
        } else {
          js.run(done, [&](Context& ctx) -> Task<> {
            co_await semaphore.acquire_async();
            hold();
            co_await ctx.yield();
            holders.fetch_sub(1);
            semaphore.release();
          });
        }
      }
      js.wait(done);
      CHECK(acquired.load() == 200);
      CHECK(most.load() <= kPermits);
      CHECK(most.load() >= 1);
      CHECK(semaphore.available() == kPermits);
    }
  }

  TEST_CASE("release(n) wakes n waiters, try_acquire does not wait, misuse throws") {
    test::Watchdog watchdog("semaphore release n", 60s);
    JobSystem js{test::config_with(2)};
    Semaphore semaphore(0);
    CHECK_FALSE(semaphore.try_acquire());
    std::atomic<int> through{0};
    Counter done;
    for (int i = 0; i < 5; ++i) {
      js.run(done, [&] {
        semaphore.acquire();
        through.fetch_add(1);
      });
    }
    std::this_thread::sleep_for(5ms);
    semaphore.release(3);
    while (through.load() < 3) std::this_thread::yield();
    std::this_thread::sleep_for(5ms);
    CHECK(through.load() == 3);
    semaphore.release(2);
    js.wait(done);
    CHECK(through.load() == 5);
    CHECK(semaphore.available() == 0);
    CHECK_THROWS_AS(semaphore.release(0), Error);
    CHECK_THROWS_AS(semaphore.release(Semaphore::kMax + 1), Error);
    CHECK_THROWS_AS(Semaphore(-1), Error);
    semaphore.release(2);
    CHECK(semaphore.try_acquire());
    CHECK(semaphore.available() == 1);
  }

  TEST_CASE("release(n) past kMax is accepted when the waiters take the difference") {
    Semaphore semaphore(0);
    std::atomic<int> through{0};
    // Foreign coroutines on this thread: each links at once (no worker involved) and is
    // resumed inline by the release below.
    for (int i = 0; i < 3; ++i) acquire_then_count(semaphore, through);
    CHECK(through.load() == 0);
    semaphore.release(Semaphore::kMax + 3);  // three to the waiters, kMax stay
    CHECK(through.load() == 3);
    CHECK(semaphore.available() == Semaphore::kMax);
    CHECK_THROWS_AS(semaphore.release(1), Error);  // now it would not fit: nothing released
    CHECK(semaphore.available() == Semaphore::kMax);
  }
}
