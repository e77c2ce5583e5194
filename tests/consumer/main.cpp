// Uses the installed package (core and the asio component): nested jobs, a coroutine job, and
// an Asio callback completing when a counter reaches zero.
#include <asio/bind_executor.hpp>
#include <asio/io_context.hpp>
#include <fiberjob/asio.hpp>
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <cstdio>

int main() {
  fiberjob::Config config;
  config.worker_count = 2;
  fiberjob::JobSystem js{config};
  std::atomic<int> sum{0};
  fiberjob::Counter done;
  js.run(done, [&sum](fiberjob::Context& ctx) -> fiberjob::Task<> {
    fiberjob::Counter parts;
    for (int i = 1; i <= 100; ++i) {
      ctx.spawn(parts, [&sum, i] { sum.fetch_add(i, std::memory_order_relaxed); });
    }
    co_await ctx.wait(parts);
  });
  asio::io_context io;
  bool completed = false;
  fiberjob::asio::async_wait(done, asio::bind_executor(io, [&completed](std::exception_ptr e) {
                               completed = e == nullptr;
                             }));
  io.run();  // returns once the wait completed
  std::printf("consumer: sum = %d, asio wait completed = %d\n", sum.load(), completed);
  return sum.load() == 5050 && completed ? 0 : 1;
}
