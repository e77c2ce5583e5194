// fiberjob: every workload, written the way a user of the library would (plain jobs,
// Context::spawn, this_fiber::wait/yield, Counter, parallel_for). Default Config except
// worker_count; idle policy Park (the default).

#include <fiberjob/fiberjob.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <stop_token>
#include <vector>

#include "fiberjob/detail/cache_line.hpp"
#include "fiberjob_tasks.hpp"
#include "harness.hpp"

namespace bench {
namespace {

namespace fj = fiberjob;
using tasks::fib_job;
using tasks::fib_task;
using tasks::skynet_job;
using tasks::skynet_task;

/// The job systems of the fiberjob phase: created by the first workload that needs one, kept
/// across repetitions (warm, like the peers' global schedulers), destroyed by the teardown.
struct Systems {
  std::unique_ptr<fj::JobSystem> two;
  std::unique_ptr<fj::JobSystem> one;
  /// One worker thread plus one slot that the main thread attaches to (AttachedWorker): two
  /// threads run jobs, as in TBB's arena of two entered by the main thread.
  std::unique_ptr<fj::JobSystem> one_plus_attached;
};
Systems& systems() {
  static Systems s;
  return s;
}

fj::JobSystem& system_with(std::uint32_t workers) {
  std::unique_ptr<fj::JobSystem>& js = workers == 1 ? systems().one : systems().two;
  if (!js) {
    fj::Config config;
    config.worker_count = workers;
    config.idle_policy = fj::IdlePolicy::Park;
    js = std::make_unique<fj::JobSystem>(config);
  }
  return *js;
}

fj::JobSystem& system_for_attaching() {
  std::unique_ptr<fj::JobSystem>& js = systems().one_plus_attached;
  if (!js) {
    fj::Config config;
    config.worker_count = 1;
    config.attachable_threads = 1;
    config.idle_policy = fj::IdlePolicy::Park;
    js = std::make_unique<fj::JobSystem>(config);
  }
  return *js;
}

/// Scheduler counters of one run, for the JSON (not checked).
void add_stats(Run& run, const fj::Stats& before, const fj::Stats& after) {
  run.extra["jobs_run"] = static_cast<double>(after.jobs_run - before.jobs_run);
  run.extra["steals"] = static_cast<double>(after.steals - before.steals);
  run.extra["fiber_switches"] = static_cast<double>(after.fiber_switches - before.fiber_switches);
  run.extra["parks"] = static_cast<double>(after.parks - before.parks);
  run.extra["pool_exhausted"] = static_cast<double>(after.pool_exhausted - before.pool_exhausted);
  run.extra["fibers_in_use_high_water"] = after.fibers_in_use_high_water;
}

// ---- 1. fib: every call spawns two child jobs and waits for both ---------------------------

Run fib(const Sizes& sizes) {
  fj::JobSystem& js = system_with(2);
  const fj::Stats before = js.stats();
  Run run;
  fj::Counter done;
  const Stopwatch watch;
  js.run(done, [&run, n = sizes.fib_n](fj::Context& ctx) { fib_job(ctx, n, &run.result); });
  js.wait(done);
  run.ns = watch.ns();
  add_stats(run, before, js.stats());
  return run;
}

// ---- 2. skynet: 10-ary tree, each node spawns 10 children and waits; leaves return their index

Run skynet(const Sizes& sizes) {
  fj::JobSystem& js = system_with(2);
  const fj::Stats before = js.stats();
  Run run;
  fj::Counter done;
  const std::int64_t leaves = skynet_leaves(sizes.skynet_depth);
  const Stopwatch watch;
  js.run(done, [&run, leaves](fj::Context& ctx) { skynet_job(ctx, 0, leaves, &run.result); });
  js.wait(done);
  run.ns = watch.ns();
  add_stats(run, before, js.stats());
  return run;
}

// ---- 1c / 2c. fib and skynet written with coroutine jobs and co_await ctx.wait --------------

Run fib_coroutine(const Sizes& sizes) {
  fj::JobSystem& js = system_with(2);
  const fj::Stats before = js.stats();
  Run run;
  fj::Counter done;
  const Stopwatch watch;
  js.run(done, [&run, n = sizes.fib_n](fj::Context& ctx) { return fib_task(ctx, n, &run.result); });
  js.wait(done);
  run.ns = watch.ns();
  add_stats(run, before, js.stats());
  return run;
}

Run skynet_coroutine(const Sizes& sizes) {
  fj::JobSystem& js = system_with(2);
  const fj::Stats before = js.stats();
  Run run;
  fj::Counter done;
  const std::int64_t leaves = skynet_leaves(sizes.skynet_depth);
  const Stopwatch watch;
  js.run(done,
         [&run, leaves](fj::Context& ctx) { return skynet_task(ctx, 0, leaves, &run.result); });
  js.wait(done);
  run.ns = watch.ns();
  add_stats(run, before, js.stats());
  return run;
}

// ---- 3. empty jobs submitted one by one from one thread, then one wait ----------------------

/// Submits and waits for `sizes.empty_jobs` empty jobs from the calling thread.
Run submit_empty_jobs(fj::JobSystem& js, const Sizes& sizes) {
  const fj::Stats before = js.stats();
  Run run;
  fj::Counter done;
  const Stopwatch watch;
  for (std::int64_t i = 0; i < sizes.empty_jobs; ++i) js.run(done, [] {});
  js.wait(done);
  run.ns = watch.ns();
  run.ops = static_cast<double>(sizes.empty_jobs);
  const fj::Stats after = js.stats();
  run.result = static_cast<std::int64_t>(after.jobs_run - before.jobs_run);  // jobs that ran
  add_stats(run, before, after);
  return run;
}

/// 3: the peers' setup: the main thread takes part (TBB: task_arena(2) entered by the main thread;
/// Boost.Fiber: the main thread is one of the two work-stealing threads). Here: one worker
/// thread, and the main thread attached (AttachedWorker) as the second worker.
Run empty_jobs(const Sizes& sizes) {
  fj::JobSystem& js = system_for_attaching();
  const fj::AttachedWorker attached(js);
  return submit_empty_jobs(js, sizes);
}

/// 3b: fiberjob's default setup, the one the empty-jobs target is judged on: the main thread
/// stays a plain thread (jobs go through the injector) and parks in JobSystem::wait, with two
/// worker threads: three threads on two cores. The peers run their row-3 setup.
Run empty_jobs_plain(const Sizes& sizes) { return submit_empty_jobs(system_with(2), sizes); }

// ---- 4. yield: two jobs on one worker yielding alternately ---------------------------------

struct YieldState {
  std::int64_t per_job = 0;
  int last = 0;                   // which job ran last
  std::int64_t alternations = 0;  // yields that came back after the other job ran
  std::int64_t yields = 0;
};

Run yield(const Sizes& sizes) {
  fj::JobSystem& js = system_with(1);
  const fj::Stats before = js.stats();
  YieldState state;
  state.per_job = sizes.yields / 2;
  Run run;
  fj::Counter done;
  const Stopwatch watch;
  // A root job starts both players, so both are ready before the first yield.
  js.run(done, [&state](fj::Context& ctx) {
    fj::Counter players;
    for (int me = 1; me <= 2; ++me) {
      ctx.spawn(players, [&state, me] {
        for (std::int64_t i = 0; i < state.per_job; ++i) {
          state.last = me;
          fj::this_fiber::yield();
          ++state.yields;
          if (state.last != me) ++state.alternations;
        }
      });
    }
    fj::this_fiber::wait(players);
  });
  js.wait(done);
  run.ns = watch.ns();
  run.ops = static_cast<double>(state.yields);
  run.result = state.alternations;
  add_stats(run, before, js.stats());
  return run;
}

// ---- 5. wait/wake ping-pong through two counters --------------------------------------------

/// Two one-shot events as counters: armed with add(1), fired with signal(), awaited with
/// this_fiber::wait. Each side re-arms the counter it waits on before it fires the other one.
struct PingPong {
  fj::Counter ping;  // A -> B
  fj::Counter pong;  // B -> A
  std::int64_t round_trips = 0;
  std::int64_t ball = 0;  // A makes it odd, B even: checks strict alternation
  std::int64_t ok_a = 0;
  std::int64_t ok_b = 0;
};

Run pingpong(std::uint32_t workers, const Sizes& sizes) {
  fj::JobSystem& js = system_with(workers);
  const fj::Stats before = js.stats();
  PingPong s;
  s.round_trips = sizes.round_trips;
  s.ping.add(1);
  s.pong.add(1);
  Run run;
  fj::Counter done;
  const Stopwatch watch;
  js.run(done, [&s] {
    for (std::int64_t i = 0; i < s.round_trips; ++i) {
      if (s.ball == 2 * i) ++s.ok_a;
      ++s.ball;
      s.ping.signal();
      fj::this_fiber::wait(s.pong);
      if (i + 1 < s.round_trips) s.pong.add(1);
    }
  });
  js.run(done, [&s] {
    for (std::int64_t i = 0; i < s.round_trips; ++i) {
      fj::this_fiber::wait(s.ping);
      if (i + 1 < s.round_trips) s.ping.add(1);
      if (s.ball == 2 * i + 1) ++s.ok_b;
      ++s.ball;
      s.pong.signal();
    }
  });
  js.wait(done);
  run.ns = watch.ns();
  run.ops = static_cast<double>(s.round_trips);
  run.result = s.ok_a == s.ok_b ? s.ok_a : -1;
  add_stats(run, before, js.stats());
  return run;
}

// ---- 10. the synchronisation primitives: a contended Mutex, an Event ping-pong ---------------

/// Two plain jobs on the two-worker system, each locking and unlocking one Mutex (a shared
/// increment inside) half of `mutex_ops` times: ns per lock/unlock pair.
Run mutex_contended(const Sizes& sizes) {
  fj::JobSystem& js = system_with(2);
  const fj::Stats before = js.stats();
  fj::Mutex mutex;
  std::int64_t shared = 0;
  const std::int64_t per_job = sizes.mutex_ops / 2;
  Run run;
  fj::Counter done;
  const Stopwatch watch;
  for (int j = 0; j < 2; ++j) {
    js.run(done, [&] {
      for (std::int64_t i = 0; i < per_job; ++i) {
        std::scoped_lock lock(mutex);
        ++shared;
      }
    });
  }
  js.wait(done);
  run.ns = watch.ns();
  run.ops = static_cast<double>(2 * per_job);
  run.result = shared;
  add_stats(run, before, js.stats());
  return run;
}

/// Row 5's ping-pong with two auto-reset Events instead of two counters.
Run event_pingpong(const Sizes& sizes) {
  fj::JobSystem& js = system_with(2);
  const fj::Stats before = js.stats();
  fj::Event ping(fj::Event::Mode::Auto);
  fj::Event pong(fj::Event::Mode::Auto);
  const std::int64_t n = sizes.round_trips;
  std::int64_t ball = 0;
  std::int64_t ok_a = 0;
  std::int64_t ok_b = 0;
  Run run;
  fj::Counter done;
  const Stopwatch watch;
  js.run(done, [&] {
    for (std::int64_t i = 0; i < n; ++i) {
      if (ball == 2 * i) ++ok_a;
      ++ball;
      ping.set();
      fj::this_fiber::wait(pong);
    }
  });
  js.run(done, [&] {
    for (std::int64_t i = 0; i < n; ++i) {
      fj::this_fiber::wait(ping);
      if (ball == 2 * i + 1) ++ok_b;
      ++ball;
      pong.set();
    }
  });
  js.wait(done);
  run.ns = watch.ns();
  run.ops = static_cast<double>(n);
  run.result = ok_a == ok_b ? ok_a : -1;
  add_stats(run, before, js.stats());
  return run;
}

// ---- 6. parallel_for: sqrt over the floats, automatic grain ---------------------------------

Run parallel_for_sqrt(const Sizes& sizes) {
  fj::JobSystem& js = system_with(2);
  std::vector<float> in;
  std::vector<float> out;
  prepare_sqrt(in, out, sizes.floats);
  const fj::Stats before = js.stats();
  Run run;
  const float* src = in.data();
  float* dst = out.data();
  const Stopwatch watch;
  fj::parallel_for(js, std::int64_t{0}, sizes.floats, std::int64_t{0},
                   [src, dst](std::int64_t lo, std::int64_t hi) { sqrt_range(src, dst, lo, hi); });
  run.ns = watch.ns();
  run.result = count_correct_sqrt(in, out);
  add_stats(run, before, js.stats());
  return run;
}

// ---- 9. many waiters on one counter: per-agent AI coroutines on a frame gate --------------

/// A counter on a cache line of its own (a Counter fills 64 bytes but is only 16-byte aligned:
/// two neighbours may straddle and share lines).
struct alignas(fj::detail::kCacheLineBytes) LineCounter {
  fj::Counter counter;
};

/// The gates of samples/game (World::run_frame, World::agent_ai): two counters alternate as the
/// frame gate, and the next one is armed before the current one opens, so an agent that steps
/// and re-links at once never finds its next gate already open. Unlike the sample's, each
/// counter starts a cache line: agents link onto the next gate and signal `done` while the main
/// thread drains the current gate, and the row measures the counters, not their layout.
struct FrameGates {
  std::array<LineCounter, 2> gates;
  LineCounter done;        // armed with one unit per agent each round, signalled by each step
  std::int64_t round = 0;  // written by the main thread before it opens the round's gate
  fj::Counter& gate(std::int64_t r) { return gates[static_cast<std::size_t>(r % 2)].counter; }
};

/// One agent: `rounds` times, waits for the gate, takes one step, signals `done` and re-links
/// on the next gate. A step counts, in the coroutine frame, whether it saw the round it was
/// released for; the count goes to `steps_out` once, at the end. (Per-agent state in an array
/// beside the frames would add a cache miss per step at 20,000 agents, or false sharing between
/// the workers if packed: the harness's cost, not the scheduler's.) `gates` and `steps_out`
/// outlive the job: the caller waits for every agent before destroying them.
fj::Task<> agent(fj::Context& ctx, FrameGates& gates, std::int64_t rounds,
                 std::int64_t* steps_out) {
  std::int64_t steps = 0;
  for (std::int64_t r = 0; r < rounds; ++r) {
    co_await ctx.wait(gates.gate(r));
    if (gates.round == r) ++steps;
    gates.done.counter.signal();
  }
  *steps_out = steps;
}

/// Whether many_waiters spawns its agents with a stop token (never stopped): their counter
/// waits are then the stoppable kind, which a stop could wake.
enum class StopTokens { None, Unused };

/// `sizes.waiters` coroutine jobs wait on one gate; the main thread releases it
/// `sizes.waiter_rounds` times (timed) after one untimed round (every agent reaches its first
/// gate and the coroutine frames are warm), waiting for the round's `done` each time. With
/// StopTokens::Unused every agent gets a token of one stop source that is never stopped.
Run many_waiters(std::uint32_t workers, const Sizes& sizes, StopTokens tokens = StopTokens::None) {
  fj::JobSystem& js = system_with(workers);
  const std::int64_t agents = sizes.waiters;
  const std::int64_t rounds = sizes.waiter_rounds + 1;
  FrameGates gates;
  std::vector<std::int64_t> steps(static_cast<std::size_t>(agents), 0);
  fj::Counter alive;
  std::stop_source stop;  // outlives the agents (js.wait(alive) below); never stopped
  gates.gate(0).add(1);
  for (std::int64_t i = 0; i < agents; ++i) {
    auto job = [&gates, rounds, s = &steps[static_cast<std::size_t>(i)]](fj::Context& ctx) {
      return agent(ctx, gates, rounds, s);
    };
    if (tokens == StopTokens::Unused) {
      js.run(alive, job, stop.get_token());
    } else {
      js.run(alive, job);
    }
  }
  auto release = [&](std::int64_t r) {
    gates.round = r;
    gates.done.counter.add(agents);
    if (r + 1 < rounds) gates.gate(r + 1).add(1);  // the last gate stays idle
    gates.gate(r).signal();                        // every agent wakes for this round
    js.wait(gates.done.counter);
  };
  release(0);
  const fj::Stats before = js.stats();
  Run run;
  const Stopwatch watch;
  for (std::int64_t r = 1; r < rounds; ++r) release(r);
  run.ns = watch.ns();
  add_stats(run, before, js.stats());
  js.wait(alive);
  run.ops = static_cast<double>(agents * sizes.waiter_rounds);
  run.result = 0;
  for (std::int64_t s : steps) run.result += s;  // expected: every agent, every round
  return run;
}

// ---- 8. allocator calls per spawned job, per wait, per yield once warm ----------------------

enum class Phase { Spawn, Wait };

/// In one job on the two-worker system: rounds of "spawn kAllocChildren empty jobs, wait for
/// them"; after the warm-up, the allocator calls between the round's start and its last spawn
/// count for the spawns, those from there to the end of the wait for the wait.
Run alloc_spawn_wait(Phase phase, const Sizes& sizes) {
  fj::JobSystem& js = system_with(2);
  const fj::Stats before = js.stats();
  alloc::Counts spawn;  // summed over the counted rounds
  alloc::Counts wait;
  std::int64_t rounds = 0;
  fj::Counter done;
  alloc::enable(true);
  js.run(done, [&](fj::Context& ctx) {
    const std::int64_t total = sizes.alloc_warmup_rounds + sizes.alloc_rounds;
    for (std::int64_t r = 0; r < total; ++r) {
      const alloc::Counts c0 = alloc::read();
      alloc::Counts c1;
      {
        fj::Counter children;
        for (int i = 0; i < Sizes::kAllocChildren; ++i) ctx.spawn(children, [] {});
        c1 = alloc::read();
        fj::this_fiber::wait(children);
      }
      const alloc::Counts c2 = alloc::read();
      if (r < sizes.alloc_warmup_rounds) continue;
      ++rounds;
      spawn.add(c0, c1);
      wait.add(c1, c2);
    }
  });
  js.wait(done);
  alloc::enable(false);
  Run run;
  if (phase == Phase::Spawn) {
    fill_alloc_run(run, {}, spawn, static_cast<double>(rounds * Sizes::kAllocChildren));
  } else {
    fill_alloc_run(run, {}, wait, static_cast<double>(rounds));
  }
  run.result = rounds;
  add_stats(run, before, js.stats());
  return run;
}

/// Two jobs yielding alternately on the one-worker system; allocator calls per yield after the
/// warm-up yields.
Run alloc_yield(const Sizes& sizes) {
  fj::JobSystem& js = system_with(1);
  struct State {
    std::int64_t per_job = 0;
    std::int64_t warmup = 0;
    std::int64_t yields = 0;
    std::int64_t counted_from = -1;
    alloc::Counts start;
    alloc::Counts end;
    std::int64_t counted = 0;
  } state;
  state.warmup = sizes.alloc_warmup_rounds;
  state.per_job = sizes.alloc_warmup_rounds + sizes.alloc_rounds;
  fj::Counter done;
  alloc::enable(true);
  js.run(done, [&state](fj::Context& ctx) {
    fj::Counter players;
    for (int me = 1; me <= 2; ++me) {
      ctx.spawn(players, [&state, me] {
        for (std::int64_t i = 0; i < state.per_job; ++i) {
          if (me == 1 && i == state.warmup) {
            state.start = alloc::read();
            state.counted_from = state.yields;
          }
          fj::this_fiber::yield();
          ++state.yields;
          if (me == 1 && i + 1 == state.per_job) {
            state.end = alloc::read();
            state.counted = state.yields - state.counted_from;
          }
        }
      });
    }
    fj::this_fiber::wait(players);
  });
  js.wait(done);
  alloc::enable(false);
  Run run;
  fill_alloc_run(run, state.start, state.end, static_cast<double>(state.counted));
  // The window must cover the counted rounds of both players (2 yields per round).
  run.result = state.counted >= 2 * sizes.alloc_rounds - 1 ? sizes.alloc_rounds : -1;
  return run;
}

}  // namespace

void register_fiberjob(Registry& registry) {
  registry.system({"fiberjob",
                   "fiberjob",
                   "0.1.0 (this tree)",
                   "JobSystem, worker_count 2 (1 for the one-worker rows), default Config "
                   "otherwise (128 fibers of 64 KiB); the main thread submits and parks in "
                   "JobSystem::wait (the default setup; row 3b for empty jobs). Row 3 only: "
                   "worker_count 1 + the main thread attached (AttachedWorker), so that two "
                   "threads run jobs as in the peers' setups",
                   "IdlePolicy::Park (default): ~64 looks for work, then sleeps on an event "
                   "count",
                   [] {
                     systems().two.reset();
                     systems().one.reset();
                     systems().one_plus_attached.reset();
                   },
                   {}});
  registry.add("empty_jobs_plain", "fiberjob", empty_jobs_plain);
  registry.add("fib", "fiberjob", fib);
  registry.add("skynet", "fiberjob", skynet);
  registry.add("fib_co", "fiberjob", fib_coroutine);
  registry.add("skynet_co", "fiberjob", skynet_coroutine);
  registry.add("empty_jobs", "fiberjob", empty_jobs);
  registry.add("yield", "fiberjob", yield);
  registry.add("pingpong_1w", "fiberjob", [](const Sizes& s) { return pingpong(1, s); });
  registry.add("pingpong_2w", "fiberjob", [](const Sizes& s) { return pingpong(2, s); });
  registry.add("mutex_2w", "fiberjob", mutex_contended);
  registry.add("event_pingpong_2w", "fiberjob", event_pingpong);
  registry.add("parallel_for", "fiberjob", parallel_for_sqrt);
  registry.add("alloc_spawn", "fiberjob",
               [](const Sizes& s) { return alloc_spawn_wait(Phase::Spawn, s); });
  registry.add("alloc_wait", "fiberjob",
               [](const Sizes& s) { return alloc_spawn_wait(Phase::Wait, s); });
  registry.add("alloc_yield", "fiberjob", alloc_yield);
  registry.add("many_waiters_1w", "fiberjob", [](const Sizes& s) { return many_waiters(1, s); });
  registry.add("many_waiters_2w", "fiberjob", [](const Sizes& s) { return many_waiters(2, s); });
  registry.add("many_waiters_stop_1w", "fiberjob",
               [](const Sizes& s) { return many_waiters(1, s, StopTokens::Unused); });
  registry.add("many_waiters_stop_2w", "fiberjob",
               [](const Sizes& s) { return many_waiters(2, s, StopTokens::Unused); });
}

}  // namespace bench
