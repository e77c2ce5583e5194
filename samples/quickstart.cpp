// quickstart: the shape of a fiberjob program — nested jobs, a stackful wait, a yield.
//
//   main ──run──▶ frame job ──spawn×kChunks──▶ chunk jobs (sum a slice of the data)
//                    │                              │ signal
//                    └──── this_fiber::wait(parts) ◀┘   (the frame job's fiber suspends;
//                    │                                    the worker runs the chunks)
//                    └──── this_fiber::yield()            (lets other ready work go first)
//   main ◀── js.wait(done): parks the main thread until the frame job has ended
//
// Each "frame" sums a large array in parallel and checks the result against a serial sum.

#include <fmt/core.h>
#include <fiberjob/fiberjob.hpp>

#include <chrono>
#include <cstdint>
#include <numeric>
#include <vector>

int main() {
  // 1. A job system with the default configuration: one worker per hardware thread,
  //    128 pooled fibers of 64 KiB each.
  fiberjob::JobSystem js;
  fmt::print("fiberjob quickstart: {} workers\n", js.worker_count());

  std::vector<std::uint64_t> data(8'000'000);
  std::iota(data.begin(), data.end(), std::uint64_t{1});
  const std::uint64_t expected = std::accumulate(data.begin(), data.end(), std::uint64_t{0});

  constexpr int kFrames = 10;
  constexpr std::size_t kChunks = 64;
  bool all_correct = true;
  for (int frame = 0; frame < kFrames; ++frame) {
    const auto start = std::chrono::steady_clock::now();
    std::uint64_t total = 0;
    fiberjob::Counter done;
    // 2. The frame job: fans out one job per chunk and waits for all of them.
    js.run(done, [&](fiberjob::Context& ctx) {
      std::vector<std::uint64_t> partial(kChunks, 0);
      fiberjob::Counter parts;  // on the frame job's fiber stack
      const std::size_t chunk = data.size() / kChunks;
      for (std::size_t c = 0; c < kChunks; ++c) {
        ctx.spawn(parts, [&, c] {
          const auto first = data.begin() + static_cast<std::ptrdiff_t>(c * chunk);
          partial[c] =
              std::accumulate(first, first + static_cast<std::ptrdiff_t>(chunk), std::uint64_t{0});
        });
      }
      // 3. Stackful wait: the fiber suspends, this worker runs chunks meanwhile.
      fiberjob::this_fiber::wait(parts);
      // 4. Let any other ready work go first, then combine.
      fiberjob::this_fiber::yield();
      total = std::accumulate(partial.begin(), partial.end(), std::uint64_t{0});
    });
    // 5. The main thread parks until the frame job is done (rethrows a job's exception).
    js.wait(done);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    const bool correct = total == expected;
    all_correct = all_correct && correct;
    fmt::print("frame {:2}: sum {} ({}) in {:.2f} ms\n", frame, total,
               correct ? "correct" : "WRONG", ms);
  }

  const fiberjob::Stats stats = js.stats();
  fmt::print("jobs run {}, steals {}, fiber switches {}, fibers in use {} (peak {})\n",
             stats.jobs_run, stats.steals, stats.fiber_switches, stats.fibers_in_use,
             stats.fibers_in_use_high_water);
  return all_correct ? 0 : 1;
}
