// Uses the installed package: spawns nested jobs, waits, checks the result.
#include <fiberjob/fiberjob.hpp>

#include <atomic>
#include <cstdio>

int main() {
  fiberjob::Config config;
  config.worker_count = 2;
  fiberjob::JobSystem js{config};
  std::atomic<int> sum{0};
  fiberjob::Counter done;
  js.run(done, [&sum](fiberjob::Context& ctx) {
    fiberjob::Counter parts;
    for (int i = 1; i <= 100; ++i) {
      ctx.spawn(parts, [&sum, i] { sum.fetch_add(i, std::memory_order_relaxed); });
    }
    fiberjob::this_fiber::wait(parts);
  });
  js.wait(done);
  std::printf("consumer: sum = %d\n", sum.load());
  return sum.load() == 5050 ? 0 : 1;
}
