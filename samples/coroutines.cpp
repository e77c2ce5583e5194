// coroutines: game logic written as coroutine jobs.
//
//   main ──run──▶ level_load (Task<>) ──spawn×kAssets──▶ load_asset jobs (plain)
//                   │  co_await ctx.wait(loads)      ◀── signal ──┘   (the coroutine suspends)
//                   │  co_await ctx.yield()                            (others go first)
//                   │  int n = co_await count_ready(ctx, assets)       (a child Task<int>)
//                   └──▶ done
//   main ◀── js.wait(done)
//
// The coroutine keeps its captures (the level name) alive across every suspension: the job
// owns its callable until the coroutine's final suspend.

#include <fmt/core.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <string>
#include <vector>

namespace {

struct Asset {
  std::string name;
  std::atomic<bool> ready{false};
};

// A child coroutine: awaited with co_await, returns a value to its parent.
fiberjob::Task<int> count_ready(fiberjob::Context& ctx, std::vector<Asset>& assets) {
  co_await ctx.yield();  // any coroutine can suspend, not only the job's root
  int ready = 0;
  for (const Asset& asset : assets) ready += asset.ready.load() ? 1 : 0;
  co_return ready;
}

}  // namespace

int main() {
  fiberjob::JobSystem js;  // default Config
  constexpr int kAssets = 32;
  std::vector<Asset> assets(kAssets);
  for (int i = 0; i < kAssets; ++i) assets[i].name = fmt::format("mesh_{:02}", i);

  int ready = 0;
  fiberjob::Counter done;
  // 1. A coroutine job: the lambda returns fiberjob::Task<>.
  js.run(done, [&, level = std::string("harbour")](fiberjob::Context& ctx) -> fiberjob::Task<> {
    fmt::print("loading level '{}' on worker {}\n", level, ctx.worker_index());
    // 2. Fan out plain jobs, one per asset.
    fiberjob::Counter loads;
    for (Asset& asset : assets) {
      ctx.spawn(loads, [&asset] { asset.ready.store(!asset.name.empty()); });
    }
    // 3. Suspend until every load has finished; the worker runs other jobs meanwhile.
    co_await ctx.wait(loads);
    // 4. Let other ready work run, then count through a child coroutine.
    co_await ctx.yield();
    ready = co_await count_ready(ctx, assets);
    fmt::print("level '{}' ready: {}/{} assets (now on worker {})\n", level, ready, kAssets,
               ctx.worker_index());
  });
  // 5. Park the main thread until the coroutine job has finished.
  js.wait(done);
  const fiberjob::Stats stats = js.stats();
  fmt::print("jobs run {}, fiber switches {}\n", stats.jobs_run, stats.fiber_switches);
  return ready == kAssets ? 0 : 1;
}
