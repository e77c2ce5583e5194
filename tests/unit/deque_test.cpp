// Single-threaded unit tests for fiberjob::detail::WorkStealingDeque.

#include <doctest/doctest.h>

#include <cstdint>
#include <deque>
#include <limits>
#include <random>
#include <vector>

#include "work_stealing_deque.hpp"

namespace {

using fiberjob::detail::WorkStealingDeque;

}  // namespace

TEST_SUITE("deque") {
  TEST_CASE("a new deque is empty and both ends return zero") {
    WorkStealingDeque deque;
    CHECK(deque.empty());
    CHECK(deque.size_approx() == 0);
    CHECK(deque.pop() == 0);
    CHECK(deque.steal() == 0);
    // Popping an empty deque must leave it usable and still empty.
    CHECK(deque.pop() == 0);
    CHECK(deque.empty());
    CHECK(deque.size_approx() == 0);
  }

  TEST_CASE("peek shows what pop takes next, without taking it") {
    WorkStealingDeque deque;
    CHECK(deque.peek() == 0);
    deque.push(1);
    deque.push(2);
    CHECK(deque.peek() == 2);
    CHECK(deque.size_approx() == 2);
    CHECK(deque.pop() == 2);
    CHECK(deque.peek() == 1);
    CHECK(deque.steal() == 1);  // a thief took the last item...
    CHECK(deque.pop() == 0);    // ...which pop sees, and so does peek after it
    CHECK(deque.peek() == 0);
  }

  TEST_CASE("the owner's empty check may lag behind thieves, never behind the owner") {
    WorkStealingDeque deque(4);
    CHECK(deque.empty_for_owner());
    deque.push(1);
    deque.push(2);
    CHECK_FALSE(deque.empty_for_owner());
    CHECK(deque.steal() == 1);
    CHECK(deque.steal() == 2);
    // The thieves emptied it; the owner's copy of top is stale until its next pop.
    CHECK(deque.empty());
    CHECK_FALSE(deque.empty_for_owner());
    CHECK(deque.pop() == 0);
    CHECK(deque.empty_for_owner());
    // Wrap-around with a stale copy: pushes reuse slots only after the copy was refreshed.
    for (std::uintptr_t round = 0; round < 8; ++round) {
      for (std::uintptr_t i = 1; i <= 4; ++i) deque.push(round * 10 + i);
      for (std::uintptr_t i = 1; i <= 4; ++i) CHECK(deque.steal() == round * 10 + i);
    }
    CHECK(deque.empty());
    CHECK(deque.pop() == 0);
  }

  TEST_CASE("pop returns items in LIFO order") {
    WorkStealingDeque deque(16);
    for (std::uintptr_t i = 1; i <= 10; ++i) {
      deque.push(i);
    }
    for (std::uintptr_t i = 10; i >= 1; --i) {
      CHECK(deque.pop() == i);
    }
    CHECK(deque.pop() == 0);
    CHECK(deque.empty());
  }

  TEST_CASE("steal returns items in FIFO order") {
    WorkStealingDeque deque(16);
    for (std::uintptr_t i = 1; i <= 10; ++i) {
      deque.push(i);
    }
    for (std::uintptr_t i = 1; i <= 10; ++i) {
      CHECK(deque.steal() == i);
    }
    CHECK(deque.steal() == 0);
    CHECK(deque.empty());
  }

  TEST_CASE("take_oldest_unshared takes FIFO with no thief, alongside push, pop and growth") {
    WorkStealingDeque deque(4);
    std::uintptr_t next_in = 1;
    std::uintptr_t next_out = 1;
    // Wraps the ring several times and grows it: the owner's FIFO take keeps its order.
    for (int round = 0; round < 50; ++round) {
      for (int i = 0; i < 1 + round % 7; ++i) deque.push(next_in++);
      for (int i = 0; i < 1 + round % 5 && next_out < next_in; ++i) {
        CHECK(deque.take_oldest_unshared() == next_out++);
      }
    }
    while (next_out < next_in) CHECK(deque.take_oldest_unshared() == next_out++);
    CHECK(deque.take_oldest_unshared() == 0);
    CHECK(deque.empty());
    CHECK(deque.empty_for_owner());
    deque.push(100);
    deque.push(101);
    CHECK(deque.take_oldest_unshared() == 100);
    CHECK(deque.pop() == 101);  // the newest, from the other end
    CHECK(deque.pop() == 0);
    CHECK(deque.take_oldest_unshared() == 0);
  }

  TEST_CASE("pop and steal take the last item only once") {
    WorkStealingDeque deque(4);
    deque.push(7);
    CHECK(deque.pop() == 7);
    CHECK(deque.steal() == 0);
    deque.push(8);
    CHECK(deque.steal() == 8);
    CHECK(deque.pop() == 0);
    CHECK(deque.empty());
  }

  TEST_CASE("growth from the smallest capacity keeps every item") {
    constexpr std::uintptr_t kCount = 5000;
    SUBCASE("popped back in LIFO order") {
      WorkStealingDeque deque(2);
      for (std::uintptr_t i = 1; i <= kCount; ++i) {
        deque.push(i);
      }
      CHECK(deque.size_approx() == static_cast<std::int64_t>(kCount));
      for (std::uintptr_t i = kCount; i >= 1; --i) {
        REQUIRE(deque.pop() == i);
      }
      CHECK(deque.pop() == 0);
    }
    SUBCASE("stolen back in FIFO order") {
      WorkStealingDeque deque(2);
      for (std::uintptr_t i = 1; i <= kCount; ++i) {
        deque.push(i);
      }
      CHECK(deque.size_approx() == static_cast<std::int64_t>(kCount));
      for (std::uintptr_t i = 1; i <= kCount; ++i) {
        REQUIRE(deque.steal() == i);
      }
      CHECK(deque.steal() == 0);
    }
  }

  TEST_CASE("growth while the ring has wrapped around keeps every item in order") {
    WorkStealingDeque deque(8);
    // Move top and bottom past the end of the ring several times without growing.
    std::uintptr_t next = 1;
    std::uintptr_t expected_steal = 1;
    for (int round = 0; round < 5; ++round) {
      for (int i = 0; i < 6; ++i) {
        deque.push(next++);
      }
      for (int i = 0; i < 6; ++i) {
        REQUIRE(deque.steal() == expected_steal++);
      }
    }
    // Now fill past capacity so the ring grows while its live range straddles the wrap point.
    for (int i = 0; i < 40; ++i) {
      deque.push(next++);
    }
    CHECK(deque.size_approx() == 40);
    // Steal half from the top and pop the rest from the bottom.
    for (int i = 0; i < 20; ++i) {
      REQUIRE(deque.steal() == expected_steal++);
    }
    for (std::uintptr_t expected_pop = next - 1; expected_pop >= expected_steal; --expected_pop) {
      REQUIRE(deque.pop() == expected_pop);
    }
    CHECK(deque.empty());
    CHECK(deque.pop() == 0);
    CHECK(deque.steal() == 0);
  }

  TEST_CASE("initial capacities that are not powers of two are accepted") {
    for (std::int64_t capacity : {std::int64_t{-5}, std::int64_t{0}, std::int64_t{1},
                                  std::int64_t{3}, std::int64_t{1000}, std::int64_t{1025}}) {
      CAPTURE(capacity);
      WorkStealingDeque deque(capacity);
      for (std::uintptr_t i = 1; i <= 3000; ++i) {
        deque.push(i);
      }
      for (std::uintptr_t i = 1; i <= 1500; ++i) {
        REQUIRE(deque.steal() == i);
      }
      for (std::uintptr_t i = 3000; i > 1500; --i) {
        REQUIRE(deque.pop() == i);
      }
      CHECK(deque.empty());
    }
  }

  TEST_CASE("size_approx and empty track the number of items") {
    WorkStealingDeque deque(4);
    CHECK(deque.size_approx() == 0);
    deque.push(1);
    deque.push(2);
    deque.push(3);
    CHECK_FALSE(deque.empty());
    CHECK(deque.size_approx() == 3);
    CHECK(deque.steal() == 1);
    CHECK(deque.size_approx() == 2);
    CHECK(deque.pop() == 3);
    CHECK(deque.size_approx() == 1);
    CHECK(deque.pop() == 2);
    CHECK(deque.size_approx() == 0);
    CHECK(deque.empty());
    CHECK(deque.pop() == 0);
    CHECK(deque.size_approx() == 0);
  }

  TEST_CASE("items keep every bit of their value") {
    WorkStealingDeque deque(2);
    constexpr std::uintptr_t kMax = std::numeric_limits<std::uintptr_t>::max();
    constexpr std::uintptr_t kHighBit = ~(kMax >> 1);
    int anchor = 0;
    const auto pointer = reinterpret_cast<std::uintptr_t>(&anchor);
    deque.push(kMax);
    deque.push(kHighBit);
    deque.push(pointer);
    deque.push(1);
    CHECK(deque.steal() == kMax);
    CHECK(deque.pop() == 1);
    CHECK(reinterpret_cast<int*>(deque.pop()) == &anchor);
    CHECK(deque.steal() == kHighBit);
    CHECK(deque.empty());
  }

  TEST_CASE("interleaved push, pop and steal behave like a double-ended queue") {
    // Compare against std::deque driven by the same random operation sequence: push_back for
    // push, pop_back for pop, pop_front for steal.
    std::mt19937_64 rng(20130223);
    std::uniform_int_distribution<int> op_dist(0, 9);
    WorkStealingDeque deque(2);
    std::deque<std::uintptr_t> model;
    std::uintptr_t next = 1;
    for (int step = 0; step < 200000; ++step) {
      const int op = op_dist(rng);
      if (op < 5) {  // push, weighted so the deque grows and shrinks over time
        deque.push(next);
        model.push_back(next);
        ++next;
      } else if (op < 8) {
        const std::uintptr_t expected = model.empty() ? 0 : model.back();
        if (!model.empty()) {
          model.pop_back();
        }
        REQUIRE(deque.pop() == expected);
      } else {
        const std::uintptr_t expected = model.empty() ? 0 : model.front();
        if (!model.empty()) {
          model.pop_front();
        }
        REQUIRE(deque.steal() == expected);
      }
      REQUIRE(deque.size_approx() == static_cast<std::int64_t>(model.size()));
      REQUIRE(deque.empty() == model.empty());
    }
    // Drain from both ends and make sure nothing is left behind.
    while (!model.empty()) {
      REQUIRE(deque.steal() == model.front());
      model.pop_front();
      if (!model.empty()) {
        REQUIRE(deque.pop() == model.back());
        model.pop_back();
      }
    }
    CHECK(deque.empty());
    CHECK(deque.pop() == 0);
    CHECK(deque.steal() == 0);
  }

  TEST_CASE("a drained deque can be refilled and reused") {
    WorkStealingDeque deque(2);
    for (int round = 0; round < 100; ++round) {
      CAPTURE(round);
      const auto base = static_cast<std::uintptr_t>(round) * 1000;
      for (std::uintptr_t i = 1; i <= 50; ++i) {
        deque.push(base + i);
      }
      for (std::uintptr_t i = 1; i <= 25; ++i) {
        REQUIRE(deque.steal() == base + i);
      }
      for (std::uintptr_t i = 50; i > 25; --i) {
        REQUIRE(deque.pop() == base + i);
      }
      REQUIRE(deque.empty());
      REQUIRE(deque.pop() == 0);
      REQUIRE(deque.steal() == 0);
    }
  }
}
