// fiberjob_instructions: one workload at one size on a one-worker JobSystem, for counting the
// instructions the library spends per job, per wait or per yield under callgrind.
//
//   fiberjob_instructions WORKLOAD SIZE
//
// scripts/count-instructions.sh runs it at two sizes under `valgrind --tool=callgrind` and
// divides the difference of the two instruction totals by the difference of the operations:
// what is fixed (start-up, the JobSystem, the threads) cancels. One worker, so callgrind's
// serialised threads do not add a second worker's stealing and parking to the count. The
// workloads are those of the benchmark rows (bench/fiberjob_workloads.cpp) at small sizes.
// Prints "operations N" (jobs run, or yields, or agent steps) and the result for a check.
#include <fiberjob/fiberjob.hpp>

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <stop_token>
#include <string>
#include <vector>

#include "fiberjob_tasks.hpp"

namespace {

namespace fj = fiberjob;
using bench::tasks::fib_job;
using bench::tasks::fib_task;
using bench::tasks::skynet_task;

/// Agents of row 9a: wait on the round's gate, count the step, signal `done`.
struct Gates {
  std::array<fj::Counter, 2> gate;
  fj::Counter done;
};

fj::Task<> agent(fj::Context& ctx, Gates& g, std::int64_t rounds, std::int64_t* steps) {
  for (std::int64_t r = 0; r < rounds; ++r) {
    co_await ctx.wait(g.gate[static_cast<std::size_t>(r % 2)]);
    ++*steps;
    g.done.signal();
  }
}

int usage() {
  std::fputs(
      "usage: fiberjob_instructions WORKLOAD SIZE\n"
      "  fib N        plain jobs, fib(N) (row 1)       fib_co N     coroutine jobs (row 1c)\n"
      "  skynet_co D  coroutine skynet, 10^D leaves    empty N      N empty jobs from main\n"
      "  yield N      two jobs yield N times in all    waiters R    1,000 agents, R rounds\n"
      "  waiters_stop R  as waiters, each agent with a stop token never stopped (row 9c)\n",
      stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) return usage();
  const std::string workload = argv[1];
  const std::int64_t size = std::strtoll(argv[2], nullptr, 10);
  if (size <= 0) return usage();
  fj::Config config;
  config.worker_count = 1;
  config.idle_policy = fj::IdlePolicy::Park;
  fj::JobSystem js(config);
  fj::Counter done;
  std::int64_t result = 0;
  std::int64_t operations = 0;
  const fj::Stats before = js.stats();
  if (workload == "fib") {
    js.run(done,
           [&result, n = static_cast<int>(size)](fj::Context& ctx) { fib_job(ctx, n, &result); });
  } else if (workload == "fib_co") {
    js.run(done, [&result, n = static_cast<int>(size)](fj::Context& ctx) {
      return fib_task(ctx, n, &result);
    });
  } else if (workload == "skynet_co") {
    std::int64_t leaves = 1;
    for (std::int64_t d = 0; d < size; ++d) leaves *= 10;
    js.run(done,
           [&result, leaves](fj::Context& ctx) { return skynet_task(ctx, 0, leaves, &result); });
  } else if (workload == "empty") {
    for (std::int64_t i = 0; i < size; ++i) js.run(done, [] {});
    result = size;
  } else if (workload == "yield") {
    js.run(done, [&result, size](fj::Context& ctx) {
      fj::Counter players;
      for (int me = 0; me < 2; ++me) {
        ctx.spawn(players, [&result, size] {
          for (std::int64_t i = 0; i < size / 2; ++i) {
            fj::this_fiber::yield();
            ++result;
          }
        });
      }
      fj::this_fiber::wait(players);
    });
  } else if (workload == "waiters" || workload == "waiters_stop") {
    constexpr std::int64_t kAgents = 1'000;
    Gates g;
    std::vector<std::int64_t> steps(kAgents, 0);
    std::stop_source source;  // waiters_stop (row 9c): every agent gets a token, never stopped
    g.gate[0].add(1);
    for (std::int64_t i = 0; i < kAgents; ++i) {
      auto step = [&g, size, s = &steps[static_cast<std::size_t>(i)]](fj::Context& ctx) {
        return agent(ctx, g, size, s);
      };
      if (workload == "waiters_stop") {
        js.run(done, step, source.get_token());
      } else {
        js.run(done, step);
      }
    }
    for (std::int64_t r = 0; r < size; ++r) {
      g.done.add(kAgents);
      if (r + 1 < size) g.gate[static_cast<std::size_t>((r + 1) % 2)].add(1);
      g.gate[static_cast<std::size_t>(r % 2)].signal();
      js.wait(g.done);
    }
    js.wait(done);
    for (std::int64_t s : steps) result += s;
    operations = result;
  } else {
    return usage();
  }
  js.wait(done);
  const fj::Stats after = js.stats();
  if (operations == 0) {
    operations =
        workload == "yield" ? result : static_cast<std::int64_t>(after.jobs_run - before.jobs_run);
  }
  std::printf("operations %lld\nresult %lld\n", static_cast<long long>(operations),
              static_cast<long long>(result));
  return 0;
}
