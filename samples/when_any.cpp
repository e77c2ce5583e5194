// when_any: the first task to finish wins; the others are stopped and joined.
//
//   pick_route ──co_await when_any(ctx, search(fast map), search(slow map), search(slow map))
//        │          each search is a job with a stop token of one stop_source; it yields
//        │          between steps, so once the winner requests the stop, the losers' next
//        │          co_await ctx.yield() completes with Error(Cancelled) and they unwind
//        ◀── {index, value} of the winner, after every loser has ended

#include <fmt/core.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>

namespace {

std::atomic<int> g_searches_unwound{0};

/// Counts the searches that ended, however they ended (their destructors ran).
struct Unwound {
  ~Unwound() { g_searches_unwound.fetch_add(1); }
};

/// A search that needs `steps` steps; it yields to the scheduler between steps.
fiberjob::Task<int> search(fiberjob::Context& ctx, int route, int steps) {
  const Unwound unwound;
  for (int step = 0; step < steps; ++step) co_await ctx.yield();  // Cancelled once stopped
  co_return route;
}

fiberjob::Task<bool> pick_route(fiberjob::Context& ctx) {
  const auto [index, route] = co_await fiberjob::when_any(
      ctx, search(ctx, 10, 1'000'000), search(ctx, 20, 5), search(ctx, 30, 1'000'000));
  fmt::print("when_any: search {} won with route {}; {} searches have ended\n", index, route,
             g_searches_unwound.load());
  co_return index == 1 && route == 20 && g_searches_unwound.load() == 3;
}

}  // namespace

int main() {
  fiberjob::JobSystem js;
  const bool ok = fiberjob::sync_wait(js, pick_route(js.context()));
  fmt::print("{}\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
