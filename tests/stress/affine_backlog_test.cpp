// An attached thread with a long backlog of thread-affine plain jobs, some of which wait: the
// fibers it holds stay bounded by what it starts while earlier jobs are suspended, not by the
// backlog, because it resumes its woken fibers (and runs the children its jobs spawned) before
// it starts another affine job.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <memory>
#include <thread>

#include "support/config.hpp"
#include "support/thread_id.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

constexpr int kProducers = 2;
constexpr int kPerProducer = 20000;
constexpr int kJobs = kProducers * kPerProducer;
constexpr int kWaitEvery = 7;  // every 7th affine job waits for a child that sleeps
/// Far below the fibers a backlog-deep build-up holds (kJobs / kWaitEvery, about 5,700).
constexpr std::uint32_t kMaxFibers = 4096;
/// What one attached thread may hold at its peak: the jobs it starts while a child sleeps
/// 50 us, plus the workers' fibers, with a wide margin for a preempted thread.
constexpr std::uint32_t kBoundedFibers = 1024;

enum class Drain { Wait, FrameLoop };

}  // namespace

TEST_SUITE("affine_backlog") {
  TEST_CASE("woken affine jobs resume before an attached thread starts more of its backlog") {
    test::Watchdog watchdog("affine backlog", 600s);
    for (const Drain drain : {Drain::Wait, Drain::FrameLoop}) {
      CAPTURE(static_cast<int>(drain));
      Config config = test::config_with(2);
      config.attachable_threads = 1;
      config.max_fiber_count = kMaxFibers;
      JobSystem js{config};
      const std::thread::id main_id = test::current_thread_id();
      // Counters outlive every job: a wait that throws must not leave a child's counter behind.
      const std::unique_ptr<Counter[]> children(new Counter[kJobs]);
      std::atomic<int> ran{0}, off_main{0}, exhausted{0};
      Counter done;
      {
        AttachedWorker main_thread(js);
        const AttachedThread target = main_thread;
        Counter producers;
        for (int p = 0; p < kProducers; ++p) {
          js.run(producers, [&, target, p] {
            for (int i = 0; i < kPerProducer; ++i) {
              const int id = p * kPerProducer + i;
              target.spawn(done, [&, id](Context& ctx) {
                if (test::current_thread_id() != main_id) off_main.fetch_add(1);
                ran.fetch_add(1);
                if (id % kWaitEvery != 0) return;
                ctx.spawn(children[id], [] { this_fiber::sleep_for(50us); });
                try {
                  this_fiber::wait(children[id]);
                } catch (const Error& error) {
                  if (error.code() == ErrorCode::FiberPoolExhausted) exhausted.fetch_add(1);
                }
              });
            }
          });
        }
        // The whole backlog is queued before the attached thread runs any of it.
        while (!producers.done()) std::this_thread::yield();
        js.wait(producers);
        if (drain == Drain::Wait) {
          js.wait(done);
        } else {
          while (!done.done()) main_thread.run_pending();
        }
      }
      js.wait(done);
      for (int id = 0; id < kJobs; id += kWaitEvery) js.wait(children[id]);
      const Stats stats = js.stats();
      CHECK(ran.load() == kJobs);
      CHECK(off_main.load() == 0);
      CHECK(exhausted.load() == 0);
      CHECK(stats.fibers_in_use_high_water <= kBoundedFibers);
    }
  }
}
