// Correct programs never crash or hang for want of fibers or stack: the pool grows on demand,
// inline work on a waiting stack is bounded by its headroom, and at the hard limit the error
// names Config::max_fiber_count.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

/// Resident set of this process in KiB (VmRSS), or 0 when unknown.
long resident_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

/// Makes `bytes` of the calling fiber's stack resident, below the caller's frame.
[[gnu::noinline]] void touch_stack(std::size_t bytes) {
  auto* scratch = static_cast<char*>(__builtin_alloca(bytes));
  for (std::size_t i = 0; i < bytes; i += 512) scratch[i] = 1;
  // The block escapes: the compiler may neither drop the stores nor split the block into
  // separate small slots (clang 14 did, touching 1.4 KiB instead of 48).
  asm volatile("" : : "r"(scratch) : "memory");
}

/// Spawn-then-wait nested `depth` levels deep, each level a plain job.
void nest(Context& ctx, int depth, std::atomic<int>& deepest) {
  if (depth == 0) {
    deepest.fetch_add(1);
    return;
  }
  Counter child;
  ctx.spawn(child, [&deepest, depth](Context& c) { nest(c, depth - 1, deepest); });
  this_fiber::wait(child);
}

}  // namespace

TEST_SUITE("fiber_pool_growth") {
  TEST_CASE("10,000 plain jobs blocked on one gate complete with the default Config") {
    test::Watchdog watchdog("10,000 blocked plain jobs", 300s);
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      Config config;
      config.worker_count = workers;
      JobSystem js{config};
      constexpr int kJobs = 10000;
      Counter gate;
      gate.add(1);
      std::atomic<int> finished{0};
      Counter done;
      for (int i = 0; i < kJobs; ++i) {
        js.run(done, [&] {
          this_fiber::wait(gate);
          finished.fetch_add(1);
        });
      }
      js.run(done, [&gate] { gate.signal(); });  // queued last: opens the gate
      js.wait(done);
      CHECK(finished.load() == kJobs);
      const Stats stats = js.stats();
      CHECK(stats.fibers_created > config.fiber_count);  // it grew
      CHECK(stats.fibers_created <= config.max_fiber_count);
      CHECK(stats.pool_exhausted >= 1);
      CHECK(stats.fibers_in_use == workers);  // every suspended job's fiber came back
    }
  }

  TEST_CASE("plain spawn-and-wait nested 10,000 deep works with the default Config") {
    test::Watchdog watchdog("plain nesting 10,000 deep", 300s);
    for (std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      Config config;
      config.worker_count = workers;
      JobSystem js{config};
      std::atomic<int> deepest{0};
      Counter done;
      js.run(done, [&deepest](Context& ctx) { nest(ctx, 10000, deepest); });
      js.wait(done);
      CHECK(deepest.load() == 1);
      // Inline work stopped at half of each stack, so the 10,000 levels spread over many
      // fibers instead of overflowing one.
      CHECK(js.stats().fibers_in_use_high_water > 1 + workers);
    }
  }

  TEST_CASE("a job whose wait needs a fiber never runs unrelated jobs nested on its stack") {
    // One worker, two warm fibers. H takes the spare fiber; A then waits for X with no warm
    // fiber left. Nesting B (which waits for Y, signalled by A after its wait) on A's stack
    // would deadlock; with the pool growing, B suspends on a fiber of its own.
    test::Watchdog watchdog("A/B nested-wait deadlock", 60s);
    JobSystem js{test::config_with(1, 2)};
    Counter hold, x, y;
    hold.add(1);
    x.add(1);
    y.add(1);
    std::vector<char> order;
    Counter done;
    js.run(done, [&] {
      this_fiber::wait(hold);
      order.push_back('H');
    });
    js.run(done, [&] {
      this_fiber::wait(x);
      order.push_back('A');
      y.signal();
    });
    js.run(done, [&] {
      this_fiber::wait(y);
      order.push_back('B');
      hold.signal();
    });
    js.run(done, [&] { x.signal(); });
    js.wait(done);
    CHECK(order == std::vector<char>{'A', 'B', 'H'});
  }

  TEST_CASE("a chain of 100 waiters on a pool of 16 fibers completes") {
    test::Watchdog watchdog("chain of 100 waiters", 60s);
    for (std::uint32_t workers : {1u, 2u, 4u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers, 16)};
      constexpr int kLinks = 100;
      std::vector<Counter> links(kLinks + 1);
      for (Counter& link : links) link.add(1);
      std::atomic<int> next{0};
      std::atomic<bool> in_order{true};
      Counter done;
      // Submitted last link first, so every job waits before its predecessor has run.
      for (int i = kLinks - 1; i >= 0; --i) {
        js.run(done, [&, i] {
          this_fiber::wait(links[static_cast<std::size_t>(i)]);
          if (next.fetch_add(1) != i) in_order.store(false);
          links[static_cast<std::size_t>(i) + 1].signal();
        });
      }
      links[0].signal();
      js.wait(links[kLinks]);
      js.wait(done);
      CHECK(next.load() == kLinks);
      CHECK(in_order.load());
    }
  }

  TEST_CASE(
      "a yield-polling loop lets the queued job that ends it run, with the spare fiber "
      "taken") {
    test::Watchdog watchdog("yield livelock", 60s);
    JobSystem js{test::config_with(1, 2)};
    Counter hold;
    hold.add(1);
    std::atomic<bool> flag{false};
    long yields = 0;
    Counter done;
    js.run(done, [&] { this_fiber::wait(hold); });  // takes the only spare fiber
    js.run(done, [&] {
      while (!flag.load()) {
        this_fiber::yield();
        ++yields;
      }
      hold.signal();
    });
    js.run(done, [&] { flag.store(true); });
    js.wait(done);
    CHECK(flag.load());
    CHECK(yields >= 1);
  }

  TEST_CASE(
      "at Config::max_fiber_count a wait and a yield throw FiberPoolExhausted, losing "
      "nothing") {
    test::Watchdog watchdog("hard limit", 60s);
    Config config = test::config_with(1, 2);
    config.max_fiber_count = 2;  // the worker's fiber and one spare
    JobSystem js{config};
    Counter hold;
    hold.add(1);
    std::string wait_error;
    std::string yield_error;
    std::atomic<int> after{0};
    Counter done;
    js.run(done, [&] { this_fiber::wait(hold); });  // takes the spare fiber
    js.run(done, [&] {
      Counter never_zero_before_the_throw;
      never_zero_before_the_throw.add(1);
      try {
        this_fiber::wait(never_zero_before_the_throw);
      } catch (const Error& error) {
        if (error.code() == ErrorCode::FiberPoolExhausted) wait_error = error.what();
      }
      never_zero_before_the_throw.signal();
      js.run(done, [&] { after.fetch_add(1); });  // queued: this yield needs a fiber
      try {
        this_fiber::yield();
      } catch (const Error& error) {
        if (error.code() == ErrorCode::FiberPoolExhausted) yield_error = error.what();
      }
      hold.signal();
    });
    js.wait(done);
    CHECK(wait_error.find("Config::max_fiber_count") != std::string::npos);
    CHECK(yield_error.find("Config::max_fiber_count") != std::string::npos);
    // The message names every holder of fibers, also the stackful joins of coroutine jobs
    // unwinding past pending jobs, so it does not send the reader to coroutines blindly.
    CHECK(wait_error.find("JobHandle destroyed while its jobs were pending") != std::string::npos);
    CHECK(after.load() == 1);  // the job the yield found was queued again and ran
    CHECK(js.stats().fibers_created == 2);
  }

  TEST_CASE("fibers past fiber_count give their stack pages back when they return") {
    test::Watchdog watchdog("stack trimming", 120s);
    Config config = test::config_with(2, 64);
    JobSystem js{config};
    const long before = resident_kib();
    constexpr int kJobs = 1024;
    constexpr std::size_t kTouched = 48 * 1024;  // of each 64 KiB stack
    Counter gate;
    gate.add(1);
    std::atomic<int> suspended{0};
    Counter done;
    for (int i = 0; i < kJobs; ++i) {
      js.run(done, [&] {
        // Resident stack pages. alloca, not an array: ASan may move a fixed-size local array
        // to its heap-allocated fake stack, but dynamic allocations stay on the fiber's stack.
        touch_stack(kTouched);
        suspended.fetch_add(1);
        this_fiber::wait(gate);
      });
    }
    while (js.stats().fibers_in_use < kJobs) std::this_thread::sleep_for(1ms);
    const long peak = resident_kib();
    gate.signal();
    js.wait(done);
    const long after = resident_kib();
    MESSAGE("RSS before: ", before, " KiB; with ", kJobs, " jobs suspended: ", peak,
            " KiB; after: ", after, " KiB");
    // 1,024 x 48 KiB = 48 MiB touched; the 64 warm fibers keep theirs (3 MiB), and every
    // fiber keeps the few KiB around its live frames.
    CHECK(peak - after > 24 * 1024);
  }

  TEST_CASE("the default Config works with 256 workers") {
    Config config;
    config.worker_count = 256;
    JobSystem js{config};
    std::atomic<int> ran{0};
    Counter done;
    for (int i = 0; i < 1000; ++i) js.run(done, [&ran] { ran.fetch_add(1); });
    js.wait(done);
    CHECK(ran.load() == 1000);
  }

  TEST_CASE(
      "the first cold fiber of a deep wait on the smallest stacks is reported without "
      "overflowing") {
    // The one-time notice is written on the waiting fiber, which work-first waits leave up to
    // half full; stdio's unbuffered stderr would put an 8 KiB buffer on that stack.
    test::Watchdog watchdog("notice on a half-full 16 KiB stack", 120s);
    Config config;
    config.worker_count = 1;
    config.fiber_count = 2;  // the chain's fibers are cold ones, whatever the compiler's frames
    config.fiber_stack_size = Config::kMinFiberStackSize;
    JobSystem js{config};
    std::atomic<int> deepest{0};
    Counter done;
    js.run(done, [&deepest](Context& ctx) { nest(ctx, 3000, deepest); });
    js.wait(done);
    CHECK(deepest.load() == 1);
    CHECK(js.stats().pool_exhausted >= 1);  // the notice was due
  }

  TEST_CASE("an attached thread whose wait finds no fiber parks instead of throwing") {
    test::Watchdog watchdog("attached thread at the hard limit", 60s);
    Config config;
    config.worker_count = 1;
    config.attachable_threads = 1;
    config.fiber_count = 3;
    config.max_fiber_count = 3;  // the worker's fiber and two spares
    JobSystem js{config};
    AttachedWorker attached{js};
    Counter gate;
    gate.add(1);
    std::atomic<int> blocked{0};
    Counter jobs;
    for (int i = 0; i < 2; ++i) {
      js.run(jobs, [&] {
        blocked.fetch_add(1);
        this_fiber::wait(gate);  // with the dispatch fiber, all three fibers are in use
      });
    }
    // The worker runs both; each suspends onto a pooled fiber, and the worker's dispatch
    // loop goes on on the third.
    while (js.stats().fibers_in_use < 3) std::this_thread::yield();
    Counter opener;
    js.run(opener, [&gate] { gate.signal(); });  // onto this thread's deque: stolen by the worker
    bool threw = false;
    try {
      js.wait(jobs);  // no fiber to run the opener on here: parks until the worker ran it
    } catch (const Error&) {
      threw = true;
    }
    js.wait(opener);
    CHECK_FALSE(threw);
    CHECK(blocked.load() == 2);
    CHECK(jobs.done());
  }
}
