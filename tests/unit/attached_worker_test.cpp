// AttachedWorker: a plain thread joins a JobSystem as a worker; its waits run jobs and always
// return on its own thread and stack.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

Config attachable(std::uint32_t workers, std::uint32_t slots = 1) {
  Config config = test::config_with(workers);
  config.attachable_threads = slots;
  return config;
}

thread_local int t_marker = 0;

/// Holds every worker thread of `js` in a job until release() (so only attached threads run).
class HoldWorkers {
 public:
  explicit HoldWorkers(JobSystem& js) : js_(js) {
    for (std::size_t i = 0; i < js.worker_count(); ++i) {
      js.run(held_, [this] {
        running_.fetch_add(1);
        while (!released_.load()) std::this_thread::yield();
      });
    }
    while (running_.load() != static_cast<int>(js.worker_count())) std::this_thread::yield();
  }
  void release() {
    released_.store(true);
    js_.wait(held_);
  }
  ~HoldWorkers() {
    if (!released_.load()) release();
  }

 private:
  JobSystem& js_;
  Counter held_;
  std::atomic<int> running_{0};
  std::atomic<bool> released_{false};
};

}  // namespace

TEST_SUITE("attached_worker") {
  TEST_CASE("an attached thread's spawns go onto its deque and its wait runs them inline") {
    JobSystem js{attachable(1)};
    HoldWorkers hold(js);  // the worker thread cannot steal: the attached thread must run all
    const test::Watchdog watchdog("attached inline", 60s);
    AttachedWorker attached(js);
    CHECK(attached.index() == 1);
    CHECK(js.current_worker_index() == 1);
    CHECK(this_fiber::on_fiber());
    const Stats before = js.stats();
    std::vector<std::size_t> ran_on(10'000, 99);
    Counter done;
    for (std::size_t i = 0; i < ran_on.size(); ++i) {
      js.run(done, [&ran_on, &js, i] { ran_on[i] = js.current_worker_index(); });
    }
    js.wait(done);
    for (const std::size_t index : ran_on) CHECK(index == 1);
    const Stats after = js.stats();
    CHECK(after.jobs_run - before.jobs_run == ran_on.size());
    CHECK(after.fiber_switches == before.fiber_switches);  // inline, on the thread's own stack
  }

  TEST_CASE("jobs that suspend while an attached thread waits: it runs them on pooled fibers") {
    for (const std::uint32_t workers : {1u, 2u}) {
      CAPTURE(workers);
      JobSystem js{attachable(workers)};
      HoldWorkers hold(js);  // only the attached thread runs jobs until the end
      const test::Watchdog watchdog("attached pooled fibers", 60s);
      AttachedWorker attached(js);
      t_marker = 7;
      const int* marker_address = &t_marker;
      const std::thread::id me = std::this_thread::get_id();
      Counter gate;
      gate.add(1);
      std::atomic<int> resumed{0};
      Counter done;
      js.run(done, [&gate] { gate.signal(); });  // runs last: the wait takes the newest first
      for (int i = 0; i < 50; ++i) {
        js.run(done, [&gate, &resumed] {
          this_fiber::wait(gate);  // the first one suspends the attached thread's own stack
          resumed.fetch_add(1);
        });
      }
      js.wait(done);
      CHECK(resumed.load() == 50);
      CHECK(std::this_thread::get_id() == me);
      CHECK(&t_marker == marker_address);
      CHECK(t_marker == 7);
      CHECK(js.stats().fiber_switches > 0);
    }
  }

  TEST_CASE("an attached thread's wait always returns on its own thread, whoever wakes it") {
    Config config = attachable(2);
    config.idle_policy = IdlePolicy::Spin;  // idle worker threads race the attached one for work
    JobSystem js{config};
    const test::Watchdog watchdog("attached migration", 120s);
    // A plain thread that signals the gate it is handed once the waiter has started.
    std::atomic<Counter*> handed{nullptr};
    std::atomic<bool> waiter_started{false};
    std::atomic<bool> quit{false};
    std::thread plain([&] {
      while (!quit.load()) {
        Counter* gate = handed.load();
        if (gate == nullptr || !waiter_started.load()) {
          std::this_thread::yield();
          continue;
        }
        std::this_thread::sleep_for(20us);  // usually after the waiter suspended
        handed.store(nullptr);
        gate->signal();
      }
    });
    AttachedWorker attached(js);
    const std::thread::id me = std::this_thread::get_id();
    int wrong_thread = 0;
    int by_worker_thread = 0;
    for (int round = 0; round < 2'000; ++round) {
      Counter gate;
      gate.add(1);
      Counter done;
      std::atomic<std::size_t> signaller{Context::kNotAWorker};
      waiter_started.store(false);
      if (round % 2 == 0) {
        // A job queued before the waiter: the attached thread's dispatch or a thief runs it.
        js.run(done, [&gate, &js, &signaller] {
          signaller.store(js.current_worker_index());
          gate.signal();
        });
      } else {
        handed.store(&gate);  // the plain thread signals it
      }
      // Runs first, inline on the attached thread's own stack, and suspends that stack.
      js.run(done, [&gate, &waiter_started] {
        waiter_started.store(true);
        this_fiber::wait(gate);
      });
      js.wait(done);
      if (std::this_thread::get_id() != me) ++wrong_thread;
      if (signaller.load() < js.worker_count()) ++by_worker_thread;
    }
    quit.store(true);
    plain.join();
    CHECK(wrong_thread == 0);
    MESSAGE("gate signalled by a worker thread in " << by_worker_thread
                                                    << " of 1000 job rounds, by a plain thread "
                                                       "in 1000 rounds");
  }

  TEST_CASE("a yield on the attached thread's own stack returns at once") {
    JobSystem js{attachable(1)};
    AttachedWorker attached(js);
    const Stats before = js.stats();
    this_fiber::yield();
    CHECK(js.stats().fiber_switches == before.fiber_switches);
  }

  TEST_CASE("slots are reused by later threads; a detached thread is a plain thread again") {
    JobSystem js{attachable(1)};
    for (int i = 0; i < 3; ++i) {
      std::thread([&js] {
        AttachedWorker attached(js);
        Counter done;
        std::atomic<int> ran{0};
        for (int j = 0; j < 100; ++j) js.run(done, [&ran] { ran.fetch_add(1); });
        js.wait(done);
        CHECK(ran.load() == 100);
      }).join();
    }
    CHECK(js.current_worker_index() == Context::kNotAWorker);
    {
      AttachedWorker attached(js);
      CHECK(js.current_worker_index() == 1);
    }
    CHECK(js.current_worker_index() == Context::kNotAWorker);
    CHECK_FALSE(this_fiber::on_fiber());
  }

  TEST_CASE("attaching without a free slot, twice, or from a job throws AttachMisuse") {
    auto code_of = [](auto&& attach) {
      try {
        attach();
      } catch (const Error& error) {
        return std::make_pair(error.code(), std::string(error.what()));
      }
      return std::make_pair(ErrorCode::InvalidConfig, std::string("no error"));
    };
    {
      JobSystem js{test::config_with(1)};  // attachable_threads = 0
      const auto [code, what] = code_of([&js] { AttachedWorker attached(js); });
      CHECK(code == ErrorCode::AttachMisuse);
      CHECK(what.find("Config::attachable_threads") != std::string::npos);
    }
    {
      JobSystem js{attachable(1, 2)};
      AttachedWorker first(js);
      const auto [code, what] = code_of([&js] { AttachedWorker second(js); });
      CHECK(code == ErrorCode::AttachMisuse);
      CHECK(what.find("worker already") != std::string::npos);
    }
    {
      JobSystem js{attachable(1)};
      Counter done;
      ErrorCode code = ErrorCode::InvalidConfig;
      js.run(done, [&js, &code] {
        try {
          AttachedWorker attached(js);
        } catch (const Error& error) {
          code = error.code();
        }
      });
      js.wait(done);
      CHECK(code == ErrorCode::AttachMisuse);
    }
    Config too_many = test::config_with(1);
    too_many.attachable_threads = 65;
    CHECK_THROWS_AS(JobSystem{too_many}, Error);
  }

  TEST_CASE("attaching keeps or restores the thread's own alternate signal stack") {
    JobSystem js{attachable(1)};
    // A crash reporter's stack: smaller than the overflow handler's (replaced while attached,
    // then restored) and bigger (kept while attached).
    for (const std::size_t bytes : {std::size_t{32} * 1024, std::size_t{256} * 1024}) {
      CAPTURE(bytes);
      std::thread([&js, bytes] {
        std::vector<unsigned char> memory(bytes);
        stack_t own{};
        own.ss_sp = memory.data();
        own.ss_size = bytes;
        REQUIRE(sigaltstack(&own, nullptr) == 0);
        {
          AttachedWorker attached(js);
          stack_t during{};
          REQUIRE(sigaltstack(nullptr, &during) == 0);
          CHECK((during.ss_flags & SS_DISABLE) == 0);
          CHECK(during.ss_size >= 64 * 1024);
          if (bytes >= 64 * 1024) CHECK(during.ss_sp == own.ss_sp);
        }
        stack_t after{};
        REQUIRE(sigaltstack(nullptr, &after) == 0);
        CHECK((after.ss_flags & SS_DISABLE) == 0);
        CHECK(after.ss_sp == own.ss_sp);
        CHECK(after.ss_size == bytes);
        stack_t off{};
        off.ss_flags = SS_DISABLE;
        sigaltstack(&off, nullptr);  // before `memory` goes
      }).join();
    }
  }
}
