// Randomised stress: job trees drawn from a seed — nested spawns, private and shared counters,
// yields, coroutine and plain jobs, exceptions — each result checked against a single-threaded
// evaluation of the same tree. A failure prints the seed (set FIBERJOB_STRESS_SEED to rerun
// one); the watchdog turns a hang into a failure that prints the seed and what every worker
// and suspended fiber was doing.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/config.hpp"
#include "support/watchdog.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

constexpr int kMaxDepth = 7;
constexpr std::uint64_t kThrowMarker = 7777;

std::uint64_t mix(std::uint64_t x) {  // splitmix64 finaliser
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// The shape of node `id` (a pure function of the seed and the id).
struct Node {
  int children;
  bool coroutine;
  bool yields;
  bool throws;
};

Node shape(std::uint64_t seed, std::uint64_t id, int depth) {
  const std::uint64_t h = mix(seed ^ mix(id));
  Node node{};
  // Bushy near the root (2..5 children), 0..4 below, none at the maximum depth.
  node.children = depth >= kMaxDepth ? 0
                  : depth < 3        ? 2 + static_cast<int>(h % 4)
                                     : static_cast<int>(h % 5);
  node.coroutine = ((h >> 8) & 1) != 0;
  node.yields = ((h >> 9) & 3) == 0;
  node.throws = node.children == 0 && (h >> 12) % 23 == 0;
  return node;
}

std::uint64_t child_id(std::uint64_t id, int i) {
  return id * 5 + static_cast<std::uint64_t>(i) + 1;
}

/// What a node's value must be, computed serially.
std::uint64_t expected(std::uint64_t seed, std::uint64_t id, int depth, std::uint64_t& leaves) {
  const Node node = shape(seed, id, depth);
  if (node.children == 0) ++leaves;
  std::uint64_t sum = 0;
  bool child_threw = false;
  for (int i = 0; i < node.children; ++i) {
    const std::uint64_t c = child_id(id, i);
    if (shape(seed, c, depth + 1).throws && shape(seed, c, depth + 1).children == 0) {
      child_threw = true;
      std::uint64_t ignored = 0;
      expected(seed, c, depth + 1, ignored);
      ++leaves;
      continue;
    }
    sum += expected(seed, c, depth + 1, leaves);
  }
  return (child_threw ? kThrowMarker : 0) + sum * 31 + (mix(id) & 0xFFFF);
}

struct Run {
  std::uint64_t seed;
  Counter ticks;  // shared by every leaf of the tree
  std::atomic<std::uint64_t> tick_count{0};
};

void evaluate(Context& ctx, Run& run, std::uint64_t id, int depth, std::uint64_t* out);

/// Spawns the children of a node (plain or coroutine jobs) onto its private counter.
void spawn_children(Context& ctx, Run& run, std::uint64_t id, int depth, int count,
                    std::vector<std::uint64_t>& slots, Counter& children) {
  for (int i = 0; i < count; ++i) {
    const std::uint64_t c = child_id(id, i);
    std::uint64_t* slot = &slots[static_cast<std::size_t>(i)];
    if (shape(run.seed, c, depth + 1).coroutine) {
      ctx.spawn(children, [&run, c, depth, slot](Context& cc) -> Task<> {
        co_await cc.yield();
        evaluate(cc, run, c, depth + 1, slot);
      });
    } else {
      ctx.spawn(children,
                [&run, c, depth, slot](Context& cc) { evaluate(cc, run, c, depth + 1, slot); });
    }
  }
}

void evaluate(Context& ctx, Run& run, std::uint64_t id, int depth, std::uint64_t* out) {
  const Node node = shape(run.seed, id, depth);
  if (node.yields) this_fiber::yield();
  if (node.children == 0) {
    // A leaf also ticks the tree-wide shared counter from a job of its own.
    ctx.spawn(run.ticks, [&run] { run.tick_count.fetch_add(1, std::memory_order_relaxed); });
    if (node.throws) throw std::runtime_error("leaf " + std::to_string(id));
  }
  std::vector<std::uint64_t> slots(static_cast<std::size_t>(node.children), 0);
  bool threw = false;
  Counter children;
  spawn_children(ctx, run, id, depth, node.children, slots, children);
  try {
    this_fiber::wait(children);
  } catch (const std::runtime_error&) {
    threw = true;
  }
  std::uint64_t sum = 0;
  for (std::uint64_t v : slots) sum += v;
  *out = (threw ? kThrowMarker : 0) + sum * 31 + (mix(id) & 0xFFFF);
}

std::vector<std::uint64_t> seeds() {
  if (const char* one = std::getenv("FIBERJOB_STRESS_SEED"))
    return {std::strtoull(one, nullptr, 0)};
  std::vector<std::uint64_t> list;
  for (std::uint64_t i = 1; i <= 24; ++i) list.push_back(mix(i));
  return list;
}

/// Runs every seed's tree on `js` and checks it against the serial evaluation; returns the
/// number of leaves.
std::uint64_t run_trees(JobSystem& js, std::uint32_t workers, const char* setup) {
  std::uint64_t total_leaves = 0;
  for (std::uint64_t seed : seeds()) {
    CAPTURE(workers);
    CAPTURE(seed);  // rerun one: FIBERJOB_STRESS_SEED=<seed>
    test::Watchdog watchdog(std::string("random tree (") + setup + "), seed " +
                                std::to_string(seed) + ", " + std::to_string(workers) + " workers",
                            120s);
    std::uint64_t leaves = 0;
    const std::uint64_t want = expected(seed, 0, 0, leaves);
    Run run;
    run.seed = seed;
    std::uint64_t got = 0;
    Counter done;
    js.run(done, [&run, &got](Context& ctx) { evaluate(ctx, run, 0, 0, &got); });
    js.wait(done);
    js.wait(run.ticks);
    CHECK(got == want);
    CHECK(run.tick_count.load() == leaves);
    total_leaves += leaves;
  }
  return total_leaves;
}

}  // namespace

TEST_SUITE("stress") {
  TEST_CASE("random job trees give the single-threaded result on 1 to 8 workers") {
    std::uint64_t total_leaves = 0;
    for (std::uint32_t workers : test::kWorkerCounts) {
      JobSystem js{test::config_with(workers, 1024)};
      total_leaves += run_trees(js, workers, "1,024 fibers");
    }
    MESSAGE("random trees: " << total_leaves << " leaves in all");
    CHECK(total_leaves > 10'000);  // the trees are big enough to mean something
  }

  TEST_CASE("random job trees on starved pools of 16 KiB stacks give the same result") {
    // Few warm fibers (workers + 1 up to 16) and the smallest stacks: every wait that cannot
    // run its children inline for want of headroom suspends and the pool grows; nothing runs
    // nested on a waiting stack but the waiter's own children, so no stack overflows.
    std::uint64_t total_leaves = 0;
    for (std::uint32_t workers : test::kWorkerCounts) {
      for (std::uint32_t fibers : {workers + 1, 16u}) {
        if (fibers < workers + 1) continue;
        Config config = test::config_with(workers, fibers);
        config.fiber_stack_size = Config::kMinFiberStackSize;
        JobSystem js{config};
        const std::string setup = std::to_string(fibers) + " warm fibers of 16 KiB";
        total_leaves += run_trees(js, workers, setup.c_str());
      }
    }
    MESSAGE("random trees on starved pools: " << total_leaves << " leaves in all");
    CHECK(total_leaves > 10'000);
  }
}
