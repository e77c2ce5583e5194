#pragma once
// A foreign coroutine type for tests: eager, fire-and-forget, frame freed at its end. Not
// fiberjob's Task: it proves the awaitables work from any coroutine.

#include <coroutine>
#include <exception>

namespace fiberjob::test {

struct Detached {
  struct promise_type {
    Detached get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::terminate(); }
  };
};

}  // namespace fiberjob::test
