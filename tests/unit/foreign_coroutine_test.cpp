// Interop with coroutine code that is not ours: a minimal hand-written task type on plain
// threads awaiting fiberjob awaitables, a foreign awaitable inside a coroutine job, and the hop
// onto the job system.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <exception>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "support/config.hpp"
#include "support/detached.hpp"
#include "support/thread_id.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

using test::Detached;

struct Observation {
  std::atomic<int> finished{0};
  std::atomic<int> on_worker_fiber{0};
  std::atomic<int> on_starting_thread{0};
};

Detached await_bare_counter(Counter& gate, Observation& seen) {
  const auto start = test::current_thread_id();
  co_await gate;  // a bare counter, from a foreign coroutine on a plain thread
  seen.on_worker_fiber.fetch_add(this_fiber::on_fiber() ? 1 : 0);
  seen.on_starting_thread.fetch_add(test::current_thread_id() == start ? 1 : 0);
  seen.finished.fetch_add(1);
}

Detached await_through_context(Context& ctx, Counter& gate, Observation& seen) {
  co_await ctx.wait(gate);
  seen.on_worker_fiber.fetch_add(this_fiber::on_fiber() ? 1 : 0);
  seen.finished.fetch_add(1);
}

Detached hop(JobSystem& js, Observation& seen) {
  co_await js.schedule();
  seen.on_worker_fiber.fetch_add(this_fiber::on_fiber() ? 1 : 0);
  seen.finished.fetch_add(1);
}

/// One link of a chain: waits for `gates[k]`, then opens `gates[k + 1]` (whose waiter is the
/// next link), from inside its own resumption.
Detached chain_link(std::vector<Counter>& gates, std::size_t k, std::atomic<std::size_t>& ran,
                    std::thread::id& resumed_on) {
  co_await gates[k];
  resumed_on = std::this_thread::get_id();
  ran.fetch_add(1, std::memory_order_relaxed);
  if (k + 1 < gates.size()) gates[k + 1].signal();
}

/// A foreign awaitable: resumes the coroutine on a thread of its own after a short delay.
struct ResumeOnNewThread {
  std::vector<std::thread>* threads;
  std::mutex* mutex;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> coroutine) {
    std::lock_guard lock(*mutex);
    threads->emplace_back([coroutine] {
      std::this_thread::sleep_for(1ms);
      coroutine.resume();
    });
  }
  void await_resume() const noexcept {}
};

}  // namespace

TEST_SUITE("foreign_coroutines") {
  TEST_CASE("10,000 foreign coroutines on a plain thread await a counter and resume on workers") {
    test::Watchdog watchdog("ten thousand foreign coroutines", 120s);
    JobSystem js{test::config_with(2)};
    Counter gate;
    gate.add(1);
    Observation seen;
    std::thread plain([&] {
      for (int i = 0; i < 10'000; ++i) await_bare_counter(gate, seen);
    });
    plain.join();
    CHECK(seen.finished.load() == 0);  // all suspended on the gate
    Counter release;
    js.run(release, [&gate] { gate.signal(); });  // the waker is a worker: resume on it
    js.wait(release);
    while (seen.finished.load() < 10'000) std::this_thread::sleep_for(1ms);
    CHECK(seen.on_worker_fiber.load() == 10'000);
    CHECK(seen.on_starting_thread.load() == 0);
  }

  TEST_CASE(
      "a foreign coroutine awaiting ctx.wait resumes on that system even if a thread "
      "signals") {
    test::Watchdog watchdog("foreign ctx.wait", 60s);
    JobSystem js{test::config_with(2)};
    Counter gate;
    gate.add(1);
    Observation seen;
    std::thread plain([&] {
      for (int i = 0; i < 100; ++i) await_through_context(js.context(), gate, seen);
    });
    plain.join();
    gate.signal();  // from the main thread: the coroutines go to the injector in bulk
    while (seen.finished.load() < 100) std::this_thread::sleep_for(1ms);
    CHECK(seen.on_worker_fiber.load() == 100);
  }

  TEST_CASE("co_await js.schedule() hops a foreign coroutine onto a worker") {
    test::Watchdog watchdog("schedule hop", 60s);
    JobSystem js{test::config_with(2)};
    Observation seen;
    for (int i = 0; i < 100; ++i) hop(js, seen);
    while (seen.finished.load() < 100) std::this_thread::sleep_for(1ms);
    CHECK(seen.on_worker_fiber.load() == 100);
  }

  TEST_CASE("a capturing lambda coroutine keeps its captures across a foreign resumption") {
    test::Watchdog watchdog("captures across foreign awaitable", 60s);
    JobSystem js{test::config_with(2)};
    std::vector<std::thread> threads;
    std::mutex mutex;
    std::atomic<int> good{0};
    Counter done;
    for (int i = 0; i < 20; ++i) {
      js.run(done,
             [text = std::string(200, 'a' + i % 26), numbers = std::vector<int>(500, i), i,
              &threads, &mutex, &good](Context& ctx) -> Task<> {
               co_await ResumeOnNewThread{&threads, &mutex};  // the job's fiber moves on meanwhile
               // Now on a foreign thread: the captures must still be alive (checked by ASan).
               const bool first = text == std::string(200, 'a' + i % 26) &&
                                  std::accumulate(numbers.begin(), numbers.end(), 0) == 500 * i;
               Counter child;
               ctx.spawn(child, [] { std::this_thread::sleep_for(100us); });
               co_await ctx.wait(child);  // off our fibers: back through Job::ResumeCoroutine
               const bool second = text.size() == 200 && numbers[499] == i;
               if (first && second) good.fetch_add(1);
             });
    }
    js.wait(done);  // signalled at each coroutine's final suspend
    {
      std::lock_guard lock(mutex);
      for (auto& t : threads) t.join();
    }
    CHECK(good.load() == 20);
  }

  TEST_CASE("a chain of 100,000 foreign coroutines woken by each other keeps the stack flat") {
    // No job system ever touches these counters: each signal resumes the next link on the
    // signalling thread. Nested, the chain would need 100,000 resume frames on one stack.
    test::Watchdog watchdog("foreign coroutine chain", 120s);
    constexpr std::size_t kLinks = 100'000;
    std::vector<Counter> gates(kLinks);
    std::atomic<std::size_t> ran{0};
    std::thread::id resumed_on;
    std::thread plain([&] {
      for (std::size_t k = 0; k < kLinks; ++k) {
        gates[k].add(1);
        chain_link(gates, k, ran, resumed_on);
      }
      CHECK(ran.load() == 0);  // every link waits on its gate
      gates[0].signal();       // runs the whole chain on this thread, before it returns
      CHECK(ran.load() == kLinks);
      CHECK(resumed_on == std::this_thread::get_id());
    });
    plain.join();
    CHECK(ran.load() == kLinks);
  }
}
