// FrameAllocator: alignment, disjoint per-worker arenas, the frame ring, over-budget errors,
// the pmr resource, the shared arena of plain threads, and the debug/ASan poisoning of a reset
// frame.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "sanitizer.hpp"  // FIBERJOB_ASAN
#include "support/config.hpp"
#include "support/watchdog.hpp"

#if defined(FIBERJOB_ASAN)
#include <sanitizer/asan_interface.h>
#endif

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

/// One allocation made by a test: where, how big, the byte it was filled with, by which worker.
struct Block {
  std::byte* memory = nullptr;
  std::size_t bytes = 0;
  unsigned char pattern = 0;
  std::size_t worker = Context::kNotAWorker;
};

/// Allocates `bytes` (a request of 0 takes 1 byte) and fills them with `pattern`.
Block make_block(FrameAllocator& frames, std::size_t bytes, std::size_t alignment,
                 unsigned char pattern, std::size_t worker = Context::kNotAWorker) {
  auto* memory = static_cast<std::byte*>(frames.allocate(bytes, alignment));
  bytes = std::max<std::size_t>(bytes, 1);
  std::memset(memory, pattern, bytes);
  return Block{memory, bytes, pattern, worker};
}

bool intact(const Block& block) {
  for (std::size_t i = 0; i < block.bytes; ++i) {
    if (block.memory[i] != std::byte{block.pattern}) return false;
  }
  return true;
}

/// Number of blocks whose bytes were overwritten.
int corrupted(const std::vector<Block>& blocks) {
  return static_cast<int>(
      std::count_if(blocks.begin(), blocks.end(), [](const Block& b) { return !intact(b); }));
}

/// Number of neighbouring pairs (by address) that overlap.
int overlaps(std::vector<Block> blocks) {
  std::sort(blocks.begin(), blocks.end(),
            [](const Block& a, const Block& b) { return a.memory < b.memory; });
  int count = 0;
  for (std::size_t i = 1; i < blocks.size(); ++i) {
    count += blocks[i - 1].memory + blocks[i - 1].bytes > blocks[i].memory;
  }
  return count;
}

bool inside(const void* p, const Block& block) {
  const auto* b = static_cast<const std::byte*>(p);
  return b >= block.memory && b < block.memory + block.bytes;
}

/// Runs `fn` as one job on `js` and waits for it.
template <class F>
void run_job(JobSystem& js, F fn) {
  Counter done;
  js.run(done, std::move(fn));
  js.wait(done);
}

}  // namespace

TEST_SUITE("frame_allocator") {
  TEST_CASE("allocations are aligned, distinct and writable, on a worker and off one") {
    test::Watchdog watchdog("frame allocator alignment", 60s);
    JobSystem js{test::config_with(1)};
    FrameAllocator frames{js};
    auto allocate_all = [&frames](std::vector<Block>& blocks, int& misaligned) {
      unsigned char pattern = 1;
      for (std::size_t alignment = 1; alignment <= 4096; alignment *= 2) {
        for (std::size_t bytes :
             {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{24}, std::size_t{100}}) {
          // A request of 0 bytes takes 1, so its pointer is distinct too.
          const Block block = make_block(frames, bytes, alignment, pattern++);
          misaligned += reinterpret_cast<std::uintptr_t>(block.memory) % alignment != 0;
          blocks.push_back(block);
        }
      }
      double* values = frames.allocate_array<double>(17);
      misaligned += reinterpret_cast<std::uintptr_t>(values) % alignof(double) != 0;
      std::memset(values, pattern, 17 * sizeof(double));
      blocks.push_back(Block{reinterpret_cast<std::byte*>(values), 17 * sizeof(double), pattern});
    };

    std::vector<Block> on_thread;
    int misaligned_on_thread = 0;
    allocate_all(on_thread, misaligned_on_thread);
    std::vector<Block> on_worker;
    int misaligned_on_worker = 0;
    run_job(js, [&] { allocate_all(on_worker, misaligned_on_worker); });

    CHECK(misaligned_on_thread == 0);
    CHECK(misaligned_on_worker == 0);
    std::vector<Block> all = on_thread;
    all.insert(all.end(), on_worker.begin(), on_worker.end());
    CHECK(corrupted(all) == 0);
    CHECK(overlaps(on_thread) == 0);
    CHECK(overlaps(all) == 0);
    CHECK_THROWS_AS(static_cast<void>(frames.allocate(8, 3)), std::invalid_argument);
    CHECK_THROWS_AS(static_cast<void>(frames.allocate(8, 0)), std::invalid_argument);
  }

  TEST_CASE("jobs on every worker allocate disjoint bytes, each in its worker's arena") {
    test::Watchdog watchdog("frame allocator on every worker", 120s);
    for (std::uint32_t workers : {2u, 4u}) {
      CAPTURE(workers);
      JobSystem js{test::config_with(workers)};
      FrameAllocator frames{
          js,
          FrameAllocatorConfig{.bytes_per_worker = 512 * 1024, .shared_bytes = 1024, .frames = 2}};
      constexpr int kJobs = 16;
      constexpr int kTightBlocks = 48;  // back to back, all workers at once
      constexpr int kBlocksPerJob = kTightBlocks + 8;
      std::vector<Block> blocks(kJobs * kBlocksPerJob);
      std::atomic<int> started{0};
      Counter done;
      for (int job = 0; job < kJobs; ++job) {
        js.run(done, [&, job](Context& ctx) {
          // The first `workers` jobs hold their workers until all have started, so every
          // worker allocates, and they allocate at the same time.
          started.fetch_add(1);
          const auto until = std::chrono::steady_clock::now() + 5s;
          while (started.load() < static_cast<int>(workers) &&
                 std::chrono::steady_clock::now() < until) {
          }
          for (int i = 0; i < kBlocksPerJob; ++i) {
            const auto pattern = static_cast<unsigned char>(job * kBlocksPerJob + i + 1);
            const std::size_t bytes = 1 + static_cast<std::size_t>((job * 37 + i * 101) % 300);
            const std::size_t alignment = std::size_t{1} << (i % 7);
            // worker_index() and allocate() run with no suspension in between: same worker.
            const std::size_t worker = ctx.worker_index();
            blocks[job * kBlocksPerJob + i] = make_block(frames, bytes, alignment, pattern, worker);
            // The job may resume on another worker and must then use that worker's arena.
            if (i >= kTightBlocks) this_fiber::yield();
          }
        });
      }
      js.wait(done);

      std::vector<int> blocks_of_worker(workers, 0);
      for (const Block& block : blocks) {
        REQUIRE(block.worker < workers);
        ++blocks_of_worker[block.worker];
      }
      CHECK(std::count(blocks_of_worker.begin(), blocks_of_worker.end(), 0) == 0);
      CHECK(corrupted(blocks) == 0);
      CHECK(overlaps(blocks) == 0);
      // Per-worker arenas: in address order, each worker's blocks form one run.
      std::sort(blocks.begin(), blocks.end(),
                [](const Block& a, const Block& b) { return a.memory < b.memory; });
      int worker_changes = 0;
      for (std::size_t i = 1; i < blocks.size(); ++i) {
        worker_changes += blocks[i].worker != blocks[i - 1].worker;
      }
      CHECK(worker_changes == static_cast<int>(workers) - 1);
      const FrameAllocator::Usage usage = frames.usage();
      std::size_t bytes = 0;
      for (const Block& block : blocks) bytes += block.bytes;
      CHECK(usage.shared_bytes_used == 0);
      CHECK(usage.bytes_used >= bytes);
      CHECK(usage.exhausted == 0);
    }
  }

  TEST_CASE("begin_frame reuses a frame's memory after `frames` frames, not before") {
    test::Watchdog watchdog("frame allocator ring", 60s);
    JobSystem js{test::config_with(1)};
    constexpr std::uint32_t kFrames = 3;
    FrameAllocator frames{
        js,
        FrameAllocatorConfig{.bytes_per_worker = 4096, .shared_bytes = 4096, .frames = kFrames}};
    constexpr std::size_t kBytes = 256;
    for (const bool on_worker : {false, true}) {
      CAPTURE(on_worker);
      auto allocate = [&](unsigned char pattern) {
        Block block;
        if (on_worker) {
          run_job(js, [&] { block = make_block(frames, kBytes, 64, pattern); });
        } else {
          block = make_block(frames, kBytes, 64, pattern);
        }
        return block;
      };
      const std::uint64_t first = frames.frame_index();
      const Block oldest = allocate(0xA0);
      std::vector<Block> later;
      for (std::uint32_t f = 1; f < kFrames; ++f) {
        frames.begin_frame();
        CHECK(frames.frame_index() == first + f);
        later.push_back(allocate(static_cast<unsigned char>(0xA0 + f)));
        CHECK(later.back().memory != oldest.memory);
      }
      // Frames first .. first + kFrames - 1 are all alive: nothing was reset or reused.
      later.push_back(oldest);
      CHECK(corrupted(later) == 0);
      CHECK(overlaps(later) == 0);

      frames.begin_frame();  // frame first + kFrames reuses the slot of frame `first`
      CHECK(frames.frame_index() == first + kFrames);
#if defined(FIBERJOB_ASAN)
      CHECK(__asan_address_is_poisoned(oldest.memory));
      CHECK(__asan_region_is_poisoned(oldest.memory, kBytes) == oldest.memory);
#elif !defined(NDEBUG)
      const Block freed{oldest.memory, kBytes, 0xDD};
      CHECK(intact(freed));
#endif
      const Block reused = allocate(0xB0);
      CHECK(reused.memory == oldest.memory);
#if defined(FIBERJOB_ASAN)
      CHECK(__asan_region_is_poisoned(reused.memory, kBytes) == nullptr);
#endif
      CHECK(intact(reused));
      // Move on to a fresh slot for the next round.
      for (std::uint32_t f = 0; f < kFrames; ++f) frames.begin_frame();
    }
    const FrameAllocator::Usage usage = frames.usage();
    CHECK(usage.peak_worker_bytes >= kBytes);
    CHECK(usage.peak_shared_bytes >= kBytes);
    CHECK(usage.bytes_used == 0);
  }

  TEST_CASE("over budget throws FrameAllocatorExhausted and corrupts nothing") {
    test::Watchdog watchdog("frame allocator budget", 60s);
    JobSystem js{test::config_with(2)};
    FrameAllocator frames{
        js, FrameAllocatorConfig{.bytes_per_worker = 4096, .shared_bytes = 2048, .frames = 2}};
    struct Outcome {
      Block before;
      Block after;
      bool threw = false;
      ErrorCode code = ErrorCode::InvalidConfig;
      std::string message;
      bool array_threw = false;
    };
    auto exhaust = [&frames](Outcome& out, std::size_t budget) {
      out.before = make_block(frames, 1000, 16, 0x5A);
      try {
        static_cast<void>(frames.allocate(budget, 16));  // 1000 bytes are gone: cannot fit
      } catch (const Error& error) {
        out.threw = true;
        out.code = error.code();
        out.message = error.what();
      }
      try {
        static_cast<void>(
            frames.allocate_array<std::uint64_t>(std::numeric_limits<std::size_t>::max() / 4));
      } catch (const Error&) {
        out.array_threw = true;
      }
      // The arena is as it was: what still fits is still handed out.
      out.after = make_block(frames, budget - 1000 - 64, 16, 0x6B);
    };

    Outcome worker;
    run_job(js, [&] { exhaust(worker, 4096); });
    Outcome shared;
    exhaust(shared, 2048);

    for (const Outcome* out : {&worker, &shared}) {
      CHECK(out->threw);
      CHECK(out->code == ErrorCode::FrameAllocatorExhausted);
      CHECK(out->array_threw);
      CHECK(intact(out->before));
      CHECK(intact(out->after));
      CHECK(overlaps({out->before, out->after}) == 0);
    }
    CHECK(worker.message.find("FrameAllocatorConfig::bytes_per_worker = 4096") !=
          std::string::npos);
    CHECK(worker.message.find("asked for 4096 bytes") != std::string::npos);
    CHECK(shared.message.find("FrameAllocatorConfig::shared_bytes = 2048") != std::string::npos);
    CHECK(frames.usage().exhausted == 4);
  }

  TEST_CASE("the pmr resource backs std::pmr containers in frame memory") {
    test::Watchdog watchdog("frame allocator pmr", 60s);
    JobSystem js{test::config_with(2)};
    FrameAllocator frames{js};
    CHECK(frames.resource()->is_equal(*frames.resource()));
    FrameAllocator other{js};
    CHECK_FALSE(frames.resource()->is_equal(*other.resource()));

    auto fill = [&frames](long& sum, std::size_t& used_after) {
      std::pmr::vector<int> values(frames.resource());
      for (int i = 0; i < 5000; ++i) values.push_back(i);
      sum = 0;
      for (int v : values) sum += v;
      used_after = frames.usage().bytes_used;
    };
    long on_thread = 0;
    std::size_t used_thread = 0;
    fill(on_thread, used_thread);
    long on_worker = 0;
    std::size_t used_worker = 0;
    run_job(js, [&] { fill(on_worker, used_worker); });
    CHECK(on_thread == 4999L * 5000 / 2);
    CHECK(on_worker == on_thread);
    CHECK(used_thread >= 5000 * sizeof(int));
    CHECK(used_worker >= used_thread + 5000 * sizeof(int));
    CHECK(frames.usage().shared_bytes_used == used_thread);
  }

  TEST_CASE("plain threads share one arena and never overlap") {
    test::Watchdog watchdog("frame allocator shared arena", 60s);
    JobSystem js{test::config_with(2)};
    FrameAllocator frames{
        js,
        FrameAllocatorConfig{.bytes_per_worker = 1024, .shared_bytes = 512 * 1024, .frames = 1}};
    constexpr int kThreads = 4;
    constexpr int kBlocks = 1000;
    std::vector<std::vector<Block>> blocks(kThreads);
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&frames, &blocks, &ready, t] {
        blocks[t].reserve(kBlocks);
        // Start together, so the threads bump the shared arena at the same time.
        ready.fetch_add(1);
        while (ready.load() < kThreads) std::this_thread::yield();
        for (int i = 0; i < kBlocks; ++i) {
          const std::size_t bytes = 1 + static_cast<std::size_t>((t * 13 + i * 7) % 61);
          const std::size_t alignment = std::size_t{1} << (i % 5);
          blocks[t].push_back(
              make_block(frames, bytes, alignment, static_cast<unsigned char>(t + 1)));
        }
      });
    }
    for (std::thread& thread : threads) thread.join();
    std::vector<Block> all;
    std::size_t bytes = 0;
    for (const auto& of_thread : blocks) {
      all.insert(all.end(), of_thread.begin(), of_thread.end());
      for (const Block& block : of_thread) bytes += block.bytes;
    }
    CHECK(corrupted(all) == 0);
    CHECK(overlaps(all) == 0);
    const FrameAllocator::Usage usage = frames.usage();
    CHECK(usage.shared_bytes_used >= bytes);
    CHECK(usage.bytes_used == usage.shared_bytes_used);  // no worker arena was touched
    // With one frame in flight, begin_frame recycles the only slot at once.
    frames.begin_frame();
    CHECK(frames.usage().bytes_used == 0);
    CHECK(frames.usage().peak_shared_bytes == usage.shared_bytes_used);
    const Block again = make_block(frames, 8, 8, 0x11);
    CHECK(std::any_of(all.begin(), all.end(),
                      [&](const Block& b) { return inside(again.memory, b); }));
  }

  TEST_CASE("current_worker_index names the calling worker of this system only") {
    test::Watchdog watchdog("current_worker_index", 60s);
    JobSystem js{test::config_with(2)};
    JobSystem other{test::config_with(1)};
    CHECK(js.current_worker_index() == Context::kNotAWorker);
    std::size_t seen = 0;
    std::size_t expected = 1;
    std::size_t from_other = 0;
    run_job(js, [&](Context& ctx) {
      seen = js.current_worker_index();
      expected = ctx.worker_index();
    });
    run_job(other, [&] { from_other = js.current_worker_index(); });
    CHECK(seen == expected);
    CHECK(seen < 2);
    CHECK(from_other == Context::kNotAWorker);
  }

  TEST_CASE("an invalid FrameAllocatorConfig is rejected naming the field") {
    JobSystem js{test::config_with(4)};
    auto message_of = [&js](const FrameAllocatorConfig& config) -> std::string {
      try {
        FrameAllocator frames{js, config};
      } catch (const Error& error) {
        return error.code() == ErrorCode::InvalidConfig ? error.what() : "wrong code";
      }
      return "no error";
    };
    CHECK(message_of({.frames = 0}).find("FrameAllocatorConfig::frames") != std::string::npos);
    const std::size_t huge = std::numeric_limits<std::size_t>::max() / 2;
    CHECK(message_of({.bytes_per_worker = huge}).find("bytes_per_worker") != std::string::npos);
    CHECK(message_of({.shared_bytes = std::numeric_limits<std::size_t>::max()})
              .find("shared_bytes") != std::string::npos);
    // Empty budgets are allowed: every allocation is then over budget.
    FrameAllocator empty{js, {.bytes_per_worker = 0, .shared_bytes = 0, .frames = 1}};
    CHECK_THROWS_AS(static_cast<void>(empty.allocate(1)), Error);
  }
}
