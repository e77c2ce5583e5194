// Child process for the stack-overflow death test: a job recurses until its fiber stack
// overflows into the guard page. Expected end: the "fiber stack overflow" report on stderr,
// then death by SIGSEGV. With the argument "class" the job runs on an extra stack class, which
// the report names.

#include <fiberjob/fiberjob.hpp>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace {

volatile int g_limit = INT_MAX;  // never reached: keeps the recursion from being "infinite"

__attribute__((noinline)) int recurse(int depth) {
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  if (depth == g_limit) return 0;
  return recurse(depth + 1) + frame[0];
}

}  // namespace

int main(int argc, char** argv) {
  // With the argument "class": the job runs on a fiber of an extra stack class.
  const bool on_class = argc > 1 && std::strcmp(argv[1], "class") == 0;
  fiberjob::Config config;
  config.worker_count = 1;
  config.fiber_count = 4;
  config.fiber_stack_size = fiberjob::Config::kMinFiberStackSize;
  fiberjob::StackClass deep;
  deep.name = "deep";
  deep.stack_size = 64 * 1024;
  deep.max_fiber_count = 2;
  config.stack_classes.push_back(deep);
  fiberjob::JobSystem js{config};
  fiberjob::Counter done;
  int result = 0;
  js.run(done, fiberjob::JobOptions{.stack_class = static_cast<std::uint8_t>(on_class ? 1 : 0)},
         [&result] { result = recurse(0); });
  js.wait(done);
  std::printf("unexpected: the recursion returned %d\n", result);
  return 0;
}
