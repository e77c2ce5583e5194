#pragma once
// The calling thread's id, read afresh. glibc declares pthread_self() __attribute__((const)),
// so a compiler may reuse std::this_thread::get_id() from before a suspension point (clang 14
// does across a co_await): after a fiber or coroutine moved to another thread that value is
// stale. Tests that compare threads across a suspension call this instead.

#include <thread>

namespace fiberjob::test {

[[gnu::noinline]] inline std::thread::id current_thread_id() {
  asm volatile("" ::: "memory");
  return std::this_thread::get_id();
}

}  // namespace fiberjob::test
