// Counter lifetime: a counter may die the instant a wait on it returns. The final signaller
// must not touch it afterwards (run under ASan: a late touch of a heap counter is a
// use-after-free report; FiberTaskingLib's WaitGroup fails exactly this).

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <memory>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

TEST_SUITE("counter_lifetime") {
  TEST_CASE("1,000,000 rounds of wait-then-destroy on fibers, counters on stack and heap") {
    test::Watchdog watchdog("counter lifetime (fibers)", 600s);
    constexpr int kLoops = 8;
    constexpr int kRoundsPerLoop = 125'000;  // 8 x 125,000 = 1,000,000 rounds
    JobSystem js{test::config_with(4)};
    std::atomic<long> rounds{0};
    Counter done;
    for (int loop = 0; loop < kLoops; ++loop) {
      js.run(done, [&rounds, loop](Context& ctx) {
        for (int i = 0; i < kRoundsPerLoop; ++i) {
          if ((i + loop) % 2 == 0) {
            Counter on_stack;  // on this fiber's stack; dies right after the wait
            ctx.spawn(on_stack, [] {});
            ctx.spawn(on_stack, [] {});
            this_fiber::wait(on_stack);
          } else {
            auto on_heap = std::make_unique<Counter>();
            ctx.spawn(*on_heap, [] {});
            this_fiber::wait(*on_heap);
            on_heap.reset();  // freed the instant the wait returns
          }
          rounds.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
    js.wait(done);
    CHECK(rounds.load() == long{kLoops} * kRoundsPerLoop);
  }

  TEST_CASE("100,000 rounds of wait-then-destroy on a plain thread") {
    test::Watchdog watchdog("counter lifetime (thread)", 600s);
    JobSystem js{test::config_with(2)};
    long rounds = 0;
    for (int i = 0; i < 100'000; ++i) {
      auto counter = std::make_unique<Counter>();
      js.run(*counter, [] {});
      js.wait(*counter);
      counter.reset();
      ++rounds;
    }
    CHECK(rounds == 100'000);
  }
}
