#pragma once
/// \file
/// `parallel_for`: a loop split into batches that run as jobs, joined through one counter.

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <span>
#include <type_traits>

#include "fiberjob/context.hpp"
#include "fiberjob/counter.hpp"
#include "fiberjob/job_system.hpp"
#include "fiberjob/task.hpp"

namespace fiberjob {

namespace detail {

/// Batches per worker when the grain is chosen automatically: enough slack for stealing to
/// balance uneven iterations, few enough that a batch amortises its job (~0.1 µs).
inline constexpr std::size_t kBatchesPerWorker = 4;

template <class Index, class Fn>
concept RangeBody = std::invocable<Fn&, Index, Index>;

template <class Index, class Fn>
concept IndexBody = std::invocable<Fn&, Index>;

/// One batch [lo, hi) of a parallel_for: a small copyable job (fits a job record inline).
template <class Index, class Fn>
struct Batch {
  Fn* body;
  Index lo;
  Index hi;
  void operator()() const {
    if constexpr (RangeBody<Index, Fn>) {
      (*body)(lo, hi);
    } else {
      for (Index i = lo; i < hi; ++i) (*body)(i);
    }
  }
};

template <class Index>
Index choose_grain(Index begin, Index end, Index grain, std::size_t workers) {
  if (grain > 0) return grain;
  const auto total = static_cast<std::size_t>(end - begin);
  const std::size_t batches = std::max<std::size_t>(1, workers * kBatchesPerWorker);
  return static_cast<Index>(std::max<std::size_t>(1, (total + batches - 1) / batches));
}

/// Spawns every batch but the last onto `counter` (in bulk, 64 per counter update) and
/// returns the last one, which the caller runs itself while the others are taken.
template <class Index, class Fn>
Batch<Index, Fn> spawn_batches(Context& ctx, Counter& counter, Index begin, Index end, Index grain,
                               Fn& body, Priority priority) {
  constexpr std::size_t kChunk = 64;
  std::array<Batch<Index, Fn>, kChunk> chunk;
  std::size_t filled = 0;
  Index lo = begin;
  while (end - lo > grain) {
    chunk[filled++] = Batch<Index, Fn>{&body, lo, static_cast<Index>(lo + grain)};
    lo = static_cast<Index>(lo + grain);
    if (filled == kChunk) {
      ctx.spawn(counter, std::span<Batch<Index, Fn>>(chunk.data(), filled), priority);
      filled = 0;
    }
  }
  if (filled != 0) {
    ctx.spawn(counter, std::span<Batch<Index, Fn>>(chunk.data(), filled), priority);
  }
  return Batch<Index, Fn>{&body, lo, end};
}

}  // namespace detail

/// Runs `body` over [begin, end) in batches of `grain` indices (0: chosen automatically,
/// about 4 batches per worker), as jobs on `ctx`'s system, and returns when all have run.
/// `body` is `void(Index i)` or, for loops the compiler should vectorise, `void(Index lo,
/// Index hi)` over one batch. The calling job runs the last batch itself; the others are
/// spawned in bulk onto this worker's deque and stolen by idle workers.
/// Suspends: yes — a stackful wait on the batches' counter (on a fiber; from a plain thread
///   use the JobSystem overload). Thread-safety: `body` runs concurrently on several workers.
/// Allocation: none (batches fit job records). Errors: the first exception a batch throws is
///   rethrown after all batches ended.
template <std::integral Index, class Fn>
requires detail::RangeBody<Index, Fn> || detail::IndexBody<Index, Fn>
void parallel_for(Context& ctx, Index begin, Index end, Index grain, Fn&& body,
                  Priority priority = Priority::Normal) {
  if (!(begin < end)) return;
  grain = detail::choose_grain(begin, end, grain, ctx.system().worker_count());
  Counter batches;
  auto last = detail::spawn_batches(ctx, batches, begin, end, grain, body, priority);
  try {
    last();
  } catch (...) {
    ctx.system().wait(batches);  // the other batches still reference `body`
    throw;
  }
  ctx.system().wait(batches);
}

/// From a plain thread (e.g. the game loop): the same loop, the calling thread parks while the
/// workers run every batch.
template <std::integral Index, class Fn>
requires detail::RangeBody<Index, Fn> || detail::IndexBody<Index, Fn>
void parallel_for(JobSystem& system, Index begin, Index end, Index grain, Fn&& body,
                  Priority priority = Priority::Normal) {
  Counter done;
  system.run(done, [&](Context& ctx) { parallel_for(ctx, begin, end, grain, body, priority); });
  system.wait(done);
}

/// `co_await parallel_for_async(ctx, begin, end, grain, body)`: the coroutine form. Same
/// contract; the awaiting coroutine resumes when every batch has run (it suspends stacklessly,
/// as `co_await ctx.wait` does). `body` is moved into the task's frame (one frame
/// allocation per call).
template <std::integral Index, class Fn>
requires detail::RangeBody<Index, std::decay_t<Fn>> || detail::IndexBody<Index, std::decay_t<Fn>>
    Task<> parallel_for_async(Context& ctx, Index begin, Index end, Index grain, Fn body,
                              Priority priority = Priority::Normal) {
  if (!(begin < end)) co_return;
  grain = detail::choose_grain(begin, end, grain, ctx.system().worker_count());
  Counter batches;
  auto last = detail::spawn_batches(ctx, batches, begin, end, grain, body, priority);
  std::exception_ptr error;
  try {
    last();
  } catch (...) {
    error = std::current_exception();
  }
  co_await ctx.wait(batches);  // rethrows a batch's exception
  if (error) std::rethrow_exception(error);
}

}  // namespace fiberjob
