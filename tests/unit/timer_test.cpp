// Time: sleeps and timed waits on Counters and Events from plain jobs, coroutine jobs and plain
// threads; the timer heap's order; shutdown with sleepers pending. Tests check completion and
// order, and that nobody resumes before its deadline (a lower bound, never a speed).

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/captured_stderr.hpp"
#include "support/config.hpp"
#include "support/trace_json.hpp"
#include "support/watchdog.hpp"
#include "timer_queue.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

/// A TimerEntry whose node records, when woken, the order in which it fired.
struct RecordingTimer {
  detail::TimerEntry entry;
  detail::WaitNode node;
  std::vector<int>* fired = nullptr;
  int id = 0;
};

void record_fired(detail::WaitNode& node) noexcept {
  auto* timer = static_cast<RecordingTimer*>(node.callback_context);
  timer->fired->push_back(timer->id);
}

}  // namespace

TEST_SUITE("timer") {
  TEST_CASE("the timer heap fires due entries in deadline order and cancel removes an entry") {
    detail::TimerQueue queue;
    std::vector<int> fired;
    std::vector<RecordingTimer> timers(200);
    std::mt19937 rng(7);
    for (int i = 0; i < 200; ++i) {
      RecordingTimer& timer = timers[static_cast<std::size_t>(i)];
      timer.fired = &fired;
      timer.id = i;
      timer.node.kind = detail::WaitNode::Kind::Callback;
      timer.node.callback = &record_fired;
      timer.node.callback_context = &timer;
      timer.entry.node = &timer.node;
      timer.entry.deadline_ns = 1000 + rng() % 5000;
      queue.insert(timer.entry);
    }
    CHECK(queue.armed());
    // Cancel every tenth: it must never fire.
    for (std::size_t i = 0; i < 200; i += 10) queue.cancel(timers[i].entry);
    std::uint64_t previous_now = 0;
    for (std::uint64_t now = 1000; now <= 7000; now += 250) {
      queue.expire(now, nullptr);
      CHECK((queue.armed() ? queue.next_deadline() > now : true));
      previous_now = now;
    }
    CHECK(previous_now == 7000);
    CHECK_FALSE(queue.armed());
    REQUIRE(fired.size() == 180);
    for (std::size_t i = 0; i < fired.size(); ++i) {
      const auto& timer = timers[static_cast<std::size_t>(fired[i])];
      CHECK(fired[i] % 10 != 0);
      CHECK(timer.entry.timed_out);
      if (i > 0) {
        CHECK(timers[static_cast<std::size_t>(fired[i - 1])].entry.deadline_ns <=
              timer.entry.deadline_ns);
      }
    }
  }

  TEST_CASE("plain and coroutine jobs sleep until at least their deadline, on any worker count") {
    test::Watchdog watchdog("sleeps", 120s);
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      std::atomic<int> early{0};
      std::atomic<int> done_count{0};
      Counter done;
      for (int i = 0; i < 16; ++i) {
        const auto nap = std::chrono::milliseconds(1 + i % 5);
        js.run(done, [&, nap] {
          const auto deadline = TimerClock::now() + nap;
          this_fiber::sleep_until(deadline);
          if (TimerClock::now() < deadline) early.fetch_add(1);
          done_count.fetch_add(1);
        });
        js.run(done, [&, nap](Context& ctx) -> Task<> {
          const auto start = TimerClock::now();
          co_await ctx.sleep_for(nap);
          if (TimerClock::now() < start + nap) early.fetch_add(1);
          done_count.fetch_add(1);
        });
      }
      js.wait(done);
      CHECK(done_count.load() == 32);
      CHECK(early.load() == 0);
    }
  }

  TEST_CASE("a sleep deeper in a plain job's call stack, and a sleep of zero, return") {
    JobSystem js{test::config_with(2)};
    std::atomic<int> steps{0};
    Counter done;
    js.run(done, [&] {
      auto nested = [&](auto&& self, int depth) -> void {
        if (depth == 0) {
          this_fiber::sleep_for(1ms);
          this_fiber::sleep_for(0ms);
          this_fiber::sleep_for(-5ms);
          steps.fetch_add(1);
          return;
        }
        self(self, depth - 1);
      };
      nested(nested, 8);
    });
    js.wait(done);
    CHECK(steps.load() == 1);
  }

  TEST_CASE("a plain thread sleeps the thread") {
    const auto deadline = TimerClock::now() + 2ms;
    this_fiber::sleep_until(deadline);
    CHECK(TimerClock::now() >= deadline);
  }

  TEST_CASE("timed event waits: false on a timeout without taking a set, true once set") {
    test::Watchdog watchdog("timed event waits", 120s);
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Event never(Event::Mode::Auto);
      Event later(Event::Mode::Auto);
      std::atomic<int> timed_out{0};
      std::atomic<int> completed{0};
      Counter done;
      js.run(done, [&] {
        if (!this_fiber::wait_for(never, 2ms)) timed_out.fetch_add(1);
        if (this_fiber::wait_for(later, 60s)) completed.fetch_add(1);
      });
      js.run(done, [&](Context& ctx) -> Task<> {
        if (!(co_await ctx.wait_for(never, 3ms))) timed_out.fetch_add(1);
        if (co_await ctx.wait_until(later, TimerClock::now() + 60s)) completed.fetch_add(1);
      });
      while (timed_out.load() < 2) std::this_thread::yield();
      CHECK_FALSE(never.is_set());
      later.set();
      while (completed.load() < 1) std::this_thread::yield();
      later.set();
      js.wait(done);
      CHECK(completed.load() == 2);
      CHECK_FALSE(later.is_set());  // each set went to one waiter
      never.set();                  // a timed-out wait took nothing and left no node behind
      CHECK(never.try_wait());
    }
  }

  TEST_CASE("timed waits on a plain thread time out, and complete when set or signalled") {
    JobSystem js{test::config_with(2)};
    Event event;
    CHECK_FALSE(this_fiber::wait_for(event, 2ms));
    Counter counter;
    counter.add(1);
    CHECK_FALSE(this_fiber::wait_for(counter, 2ms));
    Counter done;
    js.run(done, [&] {
      this_fiber::sleep_for(2ms);
      event.set();
      counter.signal();
    });
    CHECK(this_fiber::wait_for(event, 60s));
    CHECK(this_fiber::wait_until(counter, TimerClock::now() + 60s));
    js.wait(done);
  }

  TEST_CASE("timed counter waits: false on a timeout, true at zero, with the job's exception") {
    test::Watchdog watchdog("timed counter waits", 120s);
    for (std::uint32_t workers : test::kWorkerCounts) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      Counter held;
      held.add(1);
      Counter failing;
      std::atomic<bool> release{false};
      js.run(failing, [&] {
        while (!release.load()) this_fiber::sleep_for(100us);
        throw std::runtime_error("job failed");
      });
      std::atomic<int> timed_out{0};
      std::atomic<int> rethrown{0};
      Counter done;
      js.run(done, [&] {
        if (!this_fiber::wait_for(held, 2ms)) timed_out.fetch_add(1);
        try {
          (void)this_fiber::wait_for(failing, 60s);
        } catch (const std::runtime_error&) {
          rethrown.fetch_add(1);
        }
      });
      js.run(done, [&](Context& ctx) -> Task<> {
        if (!(co_await ctx.wait_for(held, 2ms))) timed_out.fetch_add(1);
        try {
          (void)co_await ctx.wait_until(failing, TimerClock::now() + 60s);
        } catch (const std::runtime_error&) {
          rethrown.fetch_add(1);
        }
      });
      while (timed_out.load() < 2) std::this_thread::yield();
      release.store(true);
      js.wait(done);
      CHECK(rethrown.load() == 2);
      held.signal();
      js.wait(held);
      CHECK_THROWS_AS(js.wait(failing), std::runtime_error);
    }
  }

  TEST_CASE("timeouts racing sets and signals wake every waiter exactly once") {
    test::Watchdog watchdog("timed wait races", 300s);
    for (std::uint32_t workers : {2u, 4u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers, 256)};
      for (int round = 0; round < 20; ++round) {
        Event gate;
        Counter pending;
        pending.add(1);
        std::atomic<int> returned{0};
        std::atomic<int> wrong{0};
        Counter done;
        for (int i = 0; i < 24; ++i) {
          const auto wait = std::chrono::microseconds(50 * (i % 8));
          js.run(done, [&, wait] {
            if (this_fiber::wait_for(gate, wait) && !gate.is_set()) wrong.fetch_add(1);
            if (this_fiber::wait_for(pending, wait) && !detail::value_reached(pending, 0)) {
              wrong.fetch_add(1);
            }
            returned.fetch_add(1);
          });
          js.run(done, [&, wait](Context& ctx) -> Task<> {
            if ((co_await ctx.wait_for(gate, wait)) && !gate.is_set()) wrong.fetch_add(1);
            if ((co_await ctx.wait_for(pending, wait)) && !detail::value_reached(pending, 0)) {
              wrong.fetch_add(1);
            }
            returned.fetch_add(1);
          });
        }
        js.run(done, [&] {
          this_fiber::sleep_for(150us);
          gate.set();
          pending.signal();
        });
        js.wait(done);
        CHECK(returned.load() == 48);
        CHECK(wrong.load() == 0);
      }
    }
  }

  TEST_CASE("a stopped job's sleep completes with Cancelled") {
    JobSystem js{test::config_with(2)};
    std::stop_source stop;
    stop.request_stop();
    Counter done;
    js.run(
        done, [] { this_fiber::sleep_for(60s); }, stop.get_token());
    CHECK_THROWS_AS(js.wait(done), Error);
  }

  TEST_CASE("shutdown waits for pending sleeps and timed waits, which complete at their deadline") {
    test::Watchdog watchdog("shutdown with sleepers", 60s);
    std::atomic<int> finished{0};
    Event never;
    Counter never_zero;
    never_zero.add(1);
    {
      JobSystem js{test::config_with(2)};
      Counter done;
      js.run(done, [&] {
        this_fiber::sleep_for(20ms);
        finished.fetch_add(1);
      });
      js.run(done, [&](Context& ctx) -> Task<> {
        co_await ctx.sleep_for(20ms);
        finished.fetch_add(1);
      });
      js.run(done, [&] {
        if (!this_fiber::wait_for(never, 20ms)) finished.fetch_add(1);
      });
      js.run(done, [&](Context& ctx) -> Task<> {
        if (!(co_await ctx.wait_for(never_zero, 20ms))) finished.fetch_add(1);
      });
      // No wait: the system is destroyed with the four jobs still sleeping or about to.
    }
    CHECK(finished.load() == 4);
    never_zero.signal();
  }

  TEST_CASE("the hang watchdog reports once, when every worker idles while a job stays stuck") {
    test::Watchdog watchdog("hang watchdog", 60s);
    test::CapturedStderr captured;
    Counter held;
    held.add(1);
    {
      Config config = test::config_with(2);
      config.hang_report_after_ms = 10;
      JobSystem js{config};
      // Idle with nothing suspended, then busy with a sleeper: no report.
      std::this_thread::sleep_for(50ms);
      Counter sleeper;
      js.run(sleeper, [] { this_fiber::sleep_for(50ms); });
      js.wait(sleeper);
      INFO(captured.text());
      CHECK(captured.text().find("hang_report_after_ms") == std::string::npos);
      // Stuck: a job waits on a counter nobody signals.
      Counter done;
      js.run(done, [&] { this_fiber::wait(held); });
      while (captured.text().find("hang_report_after_ms") == std::string::npos) {
        std::this_thread::sleep_for(1ms);
      }
      std::this_thread::sleep_for(50ms);  // several more watchdog periods: still one report
      held.signal();
      js.wait(done);
    }
    const std::string text = captured.text();
    CHECK(test::count(text, "hang_report_after_ms") == 1);
    CHECK(text.find("waits on counter") != std::string::npos);
  }

  TEST_CASE("the hang report names an affine job's wait on the attached thread's own stack") {
    test::Watchdog watchdog("hang report on an attached thread", 60s);
    test::CapturedStderr captured;
    Config config = test::config_with(2);
    config.attachable_threads = 2;  // worker 2 is attached below, worker 3 stays free
    config.hang_report_after_ms = 10;
    JobSystem js{config};
    Event ready;
    char address[32];
    std::snprintf(address, sizeof address, "%p", static_cast<void*>(&ready));
    const std::string expected =
        std::string("attached thread of worker 2, on its own stack: waits on Event ") + address;
    {
      AttachedWorker main_thread(js);
      Counter done;
      // A misuse: the event is set only after run_pending returns, so run_pending hangs.
      main_thread.spawn(done, [&ready] { ready.wait(); });
      // Ends the hang once the report is out (or, without the line, some seconds after its
      // start, so that the checks below fail instead of the test hanging).
      std::thread releaser([&] {
        auto started = std::chrono::steady_clock::time_point::max();
        for (;;) {
          const std::string text = captured.text();
          if (text.find(expected) != std::string::npos) break;
          if (started == std::chrono::steady_clock::time_point::max() &&
              text.find("hang_report_after_ms") != std::string::npos) {
            started = std::chrono::steady_clock::now();
          }
          if (std::chrono::steady_clock::now() - started > 5s) break;
          std::this_thread::sleep_for(1ms);
        }
        ready.set();
      });
      CHECK(main_thread.run_pending() == 1);
      releaser.join();
      js.wait(done);
    }
    const std::string text = captured.text();
    CHECK(test::count(text, "hang_report_after_ms") == 1);
    CHECK(text.find(expected) != std::string::npos);
    CHECK(text.find("worker 2: attached thread, ") != std::string::npos);
    CHECK(text.find("worker 3: slot for an attached thread") != std::string::npos);
  }
}
