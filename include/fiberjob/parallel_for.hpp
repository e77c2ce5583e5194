#pragma once
/// \file
/// `parallel_for`: a loop split into batches that run as jobs, joined through one counter.

#include <algorithm>
#include <array>
#include <concepts>
#include <cstddef>
#include <exception>
#include <span>
#include <stop_token>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#include "fiberjob/context.hpp"
#include "fiberjob/counter.hpp"
#include "fiberjob/error.hpp"
#include "fiberjob/job_system.hpp"
#include "fiberjob/task.hpp"

namespace fiberjob {

namespace detail {

/// Batches per worker when the grain is chosen automatically: enough slack for stealing to
/// balance uneven iterations, few enough that a batch amortises its job (~0.1 µs).
inline constexpr std::size_t kBatchesPerWorker = 4;

/// An index type of `parallel_for`: any integer type but `bool` and the character types.
template <class T>
concept LoopIndex =
    std::integral<T> && !std::same_as<std::remove_cv_t<T>, bool> &&
    !std::same_as<std::remove_cv_t<T>, char> && !std::same_as<std::remove_cv_t<T>, wchar_t> &&
    !std::same_as<std::remove_cv_t<T>, char8_t> && !std::same_as<std::remove_cv_t<T>, char16_t> &&
    !std::same_as<std::remove_cv_t<T>, char32_t>;

/// The index type of a loop from `Begin` to `End`: their common type (`int` and `std::size_t`
/// give `std::size_t`, as `i < v.size()` compares them).
template <class Begin, class End>
using LoopIndexType = std::common_type_t<Begin, End>;

template <class Index, class Fn>
concept RangeBody = std::invocable<Fn&, Index, Index>;

template <class Index, class Fn>
concept IndexBody = std::invocable<Fn&, Index>;

/// One batch [lo, hi) of a parallel_for: a small copyable job (fits a job record inline).
/// `stop` is the calling job's stop token (nullptr: none): once a stop is requested, the
/// batches not yet started skip their indices.
template <class Index, class Fn>
struct Batch {
  Fn* body;
  Index lo;
  Index hi;
  const std::stop_token* stop;
  void operator()() const {
    if (stop != nullptr && stop->stop_requested()) return;  // the loop throws Cancelled
    if constexpr (RangeBody<Index, Fn>) {
      (*body)(lo, hi);
    } else {
      for (Index i = lo; i < hi; ++i) (*body)(i);
    }
  }
};

/// Throws Error (InvalidArgument): `value` (the loop's `what`, "begin" or "end") does not fit
/// the loop's index type, e.g. a negative `int` begin with a `std::size_t` end.
template <class Index, class T>
[[noreturn]] void throw_bound_out_of_range(const char* what, T value) {
  throw Error(ErrorCode::InvalidArgument,
              std::string("fiberjob: parallel_for: ") + what + " = " + std::to_string(value) +
                  " does not fit the loop's index type (the common type of begin and end, " +
                  (std::is_signed_v<Index> ? "signed, " : "unsigned, ") +
                  std::to_string(sizeof(Index) * 8) +
                  " bits). Pass begin and end as one signed type, e.g. "
                  "std::int64_t{begin}, std::int64_t{end}");
}

/// `value` converted to `Index`; throws (see throw_bound_out_of_range) when it does not fit.
template <class Index, class T>
Index to_loop_index(const char* what, T value) {
  if (!std::in_range<Index>(value)) [[unlikely]]
    throw_bound_out_of_range<Index>(what, value);
  return static_cast<Index>(value);
}

/// The batch size in indices: `grain` when positive (at most the whole range), else about
/// kBatchesPerWorker batches per worker. `total` = end - begin > 0, computed in the unsigned
/// type so that no signed subtraction can overflow (begin = INT64_MIN, end = INT64_MAX).
template <class Unsigned, class Grain>
Unsigned choose_grain(Unsigned total, Grain grain, std::size_t workers) {
  if (std::cmp_greater(grain, 0)) {
    return std::cmp_less(grain, total) ? static_cast<Unsigned>(grain) : total;
  }
  const std::size_t batches = std::max<std::size_t>(1, workers * kBatchesPerWorker);
  const auto per_batch = total / batches + (total % batches != 0 ? 1 : 0);
  return static_cast<Unsigned>(std::max<Unsigned>(1, static_cast<Unsigned>(per_batch)));
}

/// Spawns every batch but the last onto `counter` (in bulk, 64 per counter update) and
/// returns the last one, which the caller runs itself while the others are taken. Distances
/// are unsigned (`hi - lo` of a signed range may exceed the signed maximum); the bounds of each
/// batch lie in [begin, end], so they fit `Index`. Stops spawning once `stop` (nullptr: none)
/// has a stop requested.
template <class Index, class Fn>
Batch<Index, Fn> spawn_batches(Context& ctx, Counter& counter, Index begin, Index end,
                               std::make_unsigned_t<Index> grain, Fn& body, Priority priority,
                               const std::stop_token* stop) {
  using Unsigned = std::make_unsigned_t<Index>;
  constexpr std::size_t kChunk = 64;
  std::array<Batch<Index, Fn>, kChunk> chunk;
  std::size_t filled = 0;
  Index lo = begin;
  while (static_cast<Unsigned>(static_cast<Unsigned>(end) - static_cast<Unsigned>(lo)) > grain) {
    const auto hi = static_cast<Index>(static_cast<Unsigned>(static_cast<Unsigned>(lo) + grain));
    chunk[filled++] = Batch<Index, Fn>{&body, lo, hi, stop};
    lo = hi;
    if (filled == kChunk) {
      ctx.spawn(counter, std::span<Batch<Index, Fn>>(chunk.data(), filled), priority);
      filled = 0;
      if (stop != nullptr && stop->stop_requested()) break;  // the rest would be skipped
    }
  }
  if (filled != 0) {
    ctx.spawn(counter, std::span<Batch<Index, Fn>>(chunk.data(), filled), priority);
  }
  return Batch<Index, Fn>{&body, lo, end, stop};
}

/// The stop token to hand the batches: `stop` when a stop is possible on it, else none.
inline const std::stop_token* watched(const std::stop_token& stop) noexcept {
  return stop.stop_possible() ? &stop : nullptr;
}

/// The whole loop on a fiber of `ctx`'s system (parallel_for's Context form, in `Index`).
template <class Index, class Grain, class Fn>
void run_loop(Context& ctx, Index begin, Index end, Grain grain, Fn& body, Priority priority) {
  using Unsigned = std::make_unsigned_t<Index>;
  if (!(begin < end)) return;
  const auto total =
      static_cast<Unsigned>(static_cast<Unsigned>(end) - static_cast<Unsigned>(begin));
  const Unsigned batch = choose_grain(total, grain, ctx.system().worker_count());
  const std::stop_token stop = ctx.stop_token();
  if (stop.stop_requested()) throw_cancelled("parallel_for");
  Counter batches;
  auto last = spawn_batches(ctx, batches, begin, end, batch, body, priority, watched(stop));
  try {
    last();
  } catch (...) {
    try {
      join_counter(batches);  // the other batches still reference `body`
    } catch (...) {           // the last batch's exception is the one to deliver
    }
    throw;
  }
  join_counter(batches);  // not cut short by a stop: the batches skip their indices instead
  throw_if_stopped("parallel_for");
}

}  // namespace detail

/// Runs `body` over the indices [begin, end) in batches of `grain` indices, as jobs on `ctx`'s
/// system, and returns when all have run.
///
/// `begin` and `end` may be of different integer types (`parallel_for(ctx, 0, v.size(), 0,
/// body)`): the loop's index type `Index` is their common type, as in `i < v.size()`.
/// `body` is `void(Index i)` or, for loops the compiler should vectorise, `void(Index lo,
/// Index hi)` over one batch [lo, hi). An empty range (`begin >= end`) runs nothing, as a
/// `for` loop would. The calling job runs the last batch itself; the others are spawned in
/// bulk onto this worker's deque and stolen by idle workers.
/// \param ctx the calling job's context.
/// \param begin the first index.
/// \param end one past the last index.
/// \param grain indices per batch, any integer type; 0 (or negative): chosen automatically,
///   about 4 batches per worker; larger than the range: one batch.
/// \param body the loop body, called concurrently from several workers.
/// \param priority the priority of the batch jobs.
/// Suspends: yes — a stackful wait on the batches' counter (on a fiber; from a plain thread
///   use the JobSystem overload). Thread-safety: `body` runs concurrently on several workers.
/// Allocation: none (batches fit job records).
/// Cancellation: in a job spawned with a stop token, a stop requested before the call runs
///   nothing; one requested during the loop makes every batch not yet started skip its
///   indices (a batch already running finishes). Either way the call returns only after every
///   batch ended, then throws `Error` (`Cancelled`) naming `parallel_for`.
/// Errors: `Error` (`InvalidArgument`) when `begin` or `end` does not fit `Index` (a negative
///   `int` with an unsigned `end`), before anything runs; the first exception a batch throws
///   is rethrown after all batches ended; `Error` (`Cancelled`), see above; as
///   `this_fiber::wait` otherwise.
template <detail::LoopIndex Begin, detail::LoopIndex End, detail::LoopIndex Grain, class Fn>
requires detail::RangeBody<detail::LoopIndexType<Begin, End>, std::remove_reference_t<Fn>> ||
    detail::IndexBody<detail::LoopIndexType<Begin, End>, std::remove_reference_t<Fn>>
void parallel_for(Context& ctx, Begin begin, End end, Grain grain, Fn&& body,
                  Priority priority = Priority::Normal) {
  using Index = detail::LoopIndexType<Begin, End>;
  detail::run_loop(ctx, detail::to_loop_index<Index>("begin", begin),
                   detail::to_loop_index<Index>("end", end), grain, body, priority);
}

/// From a plain thread (e.g. the game loop): the same loop; the calling thread parks while the
/// workers run every batch (called from a job, it waits as `JobSystem::wait` does).
/// \param system the job system whose workers run the batches.
/// \param begin the first index.
/// \param end one past the last index.
/// \param grain indices per batch (0: automatic), as for the Context form.
/// \param body the loop body, called concurrently from several workers.
/// \param priority the priority of the batch jobs.
/// Suspends: a plain thread parks; a job waits as `this_fiber::wait`. Thread-safety: any
///   thread. Errors: as the Context form (called from a job, the loop gets the job's stop
///   token); `Error` (`InvalidArgument`) is thrown on the calling thread before any job runs.
template <detail::LoopIndex Begin, detail::LoopIndex End, detail::LoopIndex Grain, class Fn>
requires detail::RangeBody<detail::LoopIndexType<Begin, End>, std::remove_reference_t<Fn>> ||
    detail::IndexBody<detail::LoopIndexType<Begin, End>, std::remove_reference_t<Fn>>
void parallel_for(JobSystem& system, Begin begin, End end, Grain grain, Fn&& body,
                  Priority priority = Priority::Normal) {
  using Index = detail::LoopIndexType<Begin, End>;
  const auto first = detail::to_loop_index<Index>("begin", begin);
  const auto last = detail::to_loop_index<Index>("end", end);
  if (!(first < last)) return;
  const std::stop_token stop = system.context().stop_token();  // the calling job's, if any
  if (stop.stop_requested()) detail::throw_cancelled("parallel_for");
  // One reference captured: the job fits its record inline also with the token beside it.
  auto args = std::tie(first, last, grain, body, priority);
  auto loop = [&args](Context& ctx) {
    std::apply([&ctx](auto&... arg) { detail::run_loop(ctx, arg...); }, args);
  };
  Counter done;
  if (stop.stop_possible()) {
    system.run(done, loop, stop);
  } else {
    system.run(done, loop);
  }
  detail::join_counter(done);  // the loop's job gets the stop itself
}

/// `co_await parallel_for_async(ctx, begin, end, grain, body)`: the coroutine form, for
/// coroutine jobs. Same contract as `parallel_for(Context&, ...)`; the awaiting coroutine
/// suspends stacklessly (as `co_await ctx.wait` does, holding no fiber) and resumes, on any
/// worker, when every batch has run. `body` is moved into the task's frame (one frame
/// allocation per call, from the thread's frame pool).
/// \param ctx the calling job's context.
/// \param begin the first index.
/// \param end one past the last index.
/// \param grain indices per batch (0: automatic), as for `parallel_for`.
/// \param body the loop body, moved into the task; called concurrently from several workers.
/// \param priority the priority of the batch jobs.
/// \return a lazy task: the loop starts when it is awaited.
/// Errors: `Error` (`InvalidArgument`) from the `co_await` when `begin` or `end` does not fit
///   the index type; the first exception of a batch, rethrown from the `co_await` after all
///   batches ended; `Error` (`Cancelled`) as for `parallel_for` (the coroutine waits for the
///   batches without a fiber also then).
template <detail::LoopIndex Begin, detail::LoopIndex End, detail::LoopIndex Grain, class Fn>
requires detail::RangeBody<detail::LoopIndexType<Begin, End>, std::decay_t<Fn>> ||
    detail::IndexBody<detail::LoopIndexType<Begin, End>, std::decay_t<Fn>>
        Task<> parallel_for_async(Context& ctx, Begin begin, End end, Grain grain, Fn body,
                                  Priority priority = Priority::Normal) {
  using Index = detail::LoopIndexType<Begin, End>;
  using Unsigned = std::make_unsigned_t<Index>;
  const auto first = detail::to_loop_index<Index>("begin", begin);
  const auto limit = detail::to_loop_index<Index>("end", end);
  if (!(first < limit)) co_return;
  const auto total =
      static_cast<Unsigned>(static_cast<Unsigned>(limit) - static_cast<Unsigned>(first));
  const Unsigned batch = detail::choose_grain(total, grain, ctx.system().worker_count());
  const std::stop_token stop = ctx.stop_token();
  if (stop.stop_requested()) detail::throw_cancelled("parallel_for_async");
  Counter batches;
  auto last = detail::spawn_batches(ctx, batches, first, limit, batch, body, priority,
                                    detail::watched(stop));
  std::exception_ptr error;
  try {
    last();
  } catch (...) {
    error = std::current_exception();
  }
  co_await detail::join_children(ctx, batches);  // rethrows a batch's exception
  if (error) std::rethrow_exception(error);
  detail::throw_if_stopped("parallel_for_async");
}

}  // namespace fiberjob
