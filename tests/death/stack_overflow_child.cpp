// Child process for the stack-overflow death test: a job recurses until its fiber stack
// overflows into the guard page. Expected end: the "fiber stack overflow" report on stderr,
// then death by SIGSEGV.

#include <fiberjob/fiberjob.hpp>

#include <climits>
#include <cstdio>

namespace {

volatile int g_limit = INT_MAX;  // never reached: keeps the recursion from being "infinite"

__attribute__((noinline)) int recurse(int depth) {
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  if (depth == g_limit) return 0;
  return recurse(depth + 1) + frame[0];
}

}  // namespace

int main() {
  fiberjob::Config config;
  config.worker_count = 1;
  config.fiber_count = 4;
  config.fiber_stack_size = fiberjob::Config::kMinFiberStackSize;
  fiberjob::JobSystem js{config};
  fiberjob::Counter done;
  int result = 0;
  js.run(done, [&result] { result = recurse(0); });
  js.wait(done);
  std::printf("unexpected: the recursion returned %d\n", result);
  return 0;
}
