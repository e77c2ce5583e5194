// asio_interop: an Asio program (a network/IO thread running an io_context) hands work to the
// job system and awaits it without blocking the IO thread; the jobs hand results back.
//
//   io thread: asio::awaitable ──js.run×kChunks──▶ checksum jobs ──asio::post──▶ io thread log
//                 │ co_await fiberjob::asio::async_wait(parts, use_awaitable)
//                 ◀──────────── completes on the io thread when the counter reaches zero
//
// Build: target fiberjob::asio (optional part; Debian libasio-dev).

#include <fmt/core.h>
#include <fiberjob/asio.hpp>
#include <fiberjob/fiberjob.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>
#include <cstdint>
#include <numeric>
#include <vector>

int main() {
  fiberjob::JobSystem js;
  asio::io_context io;  // the "IO thread" is main, running io.run()

  constexpr std::size_t kChunks = 16;
  std::vector<std::uint8_t> payload(1 << 20);
  std::iota(payload.begin(), payload.end(), std::uint8_t{0});
  std::vector<std::uint64_t> sums(kChunks, 0);
  int chunks_reported = 0;  // touched on the io thread only
  bool ok = false;

  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        // 1. Fan the checksum out to the job system.
        fiberjob::Counter parts;
        const std::size_t chunk = payload.size() / kChunks;
        for (std::size_t c = 0; c < kChunks; ++c) {
          js.run(parts, [&, c] {
            const auto first = payload.begin() + static_cast<std::ptrdiff_t>(c * chunk);
            sums[c] = std::accumulate(first, first + static_cast<std::ptrdiff_t>(chunk),
                                      std::uint64_t{0});
            // 2. A job hands a result back to the IO thread.
            asio::post(io, [&chunks_reported] { ++chunks_reported; });
          });
        }
        // 3. Await the counter as an Asio operation: the IO thread keeps serving meanwhile.
        co_await fiberjob::asio::async_wait(parts, asio::use_awaitable);
        const std::uint64_t total = std::accumulate(sums.begin(), sums.end(), std::uint64_t{0});
        const std::uint64_t expected =
            std::accumulate(payload.begin(), payload.end(), std::uint64_t{0});
        ok = total == expected;
        fmt::print("checksum {} ({}), computed by {} jobs\n", total, ok ? "correct" : "WRONG",
                   kChunks);
      },
      asio::detached);
  io.run();  // returns when the coroutine and every posted report have run
  fmt::print("{} chunk reports arrived on the IO thread\n", chunks_reported);
  return ok && chunks_reported == static_cast<int>(kChunks) ? 0 : 1;
}
