// Config: every out-of-range field is rejected at construction with a message naming it.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <cstdio>
#include <string>

using namespace fiberjob;

namespace {

std::string rejection(const Config& config) {
  try {
    JobSystem js{config};
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::InvalidConfig);
    return e.what();
  }
  return "accepted";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_SUITE("config") {
  TEST_CASE("defaults follow the design: hardware workers, 128 fibers of 64 KiB, parking") {
    const Config config;
    CHECK(config.worker_count == hardware_worker_count());
    CHECK(config.fiber_count == 128);
    CHECK(config.fiber_stack_size == 64 * 1024);
    CHECK(config.idle_policy == IdlePolicy::Park);
    CHECK_FALSE(config.pin_workers);
    JobSystem js;  // the defaults are valid
    CHECK(js.worker_count() == hardware_worker_count());
  }

  TEST_CASE("zero workers is rejected naming worker_count") {
    Config config;
    config.worker_count = 0;
    CHECK(contains(rejection(config), "Config::worker_count"));
  }

  TEST_CASE("zero warm fibers, or more than the hard limit, is rejected naming fiber_count") {
    Config config;
    config.worker_count = 2;
    config.fiber_count = 0;
    CHECK(contains(rejection(config), "Config::fiber_count"));
    config.fiber_count = config.max_fiber_count + 1;
    CHECK(contains(rejection(config), "Config::fiber_count"));
    config.fiber_count = 1;  // fewer than the workers: the pool grows for them
    CHECK(rejection(config) == "accepted");
  }

  TEST_CASE(
      "a hard limit below workers + attached threads + 1 is rejected naming "
      "max_fiber_count") {
    Config config;
    config.worker_count = 2;
    config.attachable_threads = 1;
    config.fiber_count = 2;
    config.max_fiber_count = 3;
    CHECK(contains(rejection(config), "Config::max_fiber_count"));
    config.max_fiber_count = 4;
    CHECK(rejection(config) == "accepted");
  }

  TEST_CASE("a hard limit above what vm.max_map_count allows is rejected naming both") {
    Config config;
    config.worker_count = 1;
    config.max_fiber_count = 1u << 20;  // 2 mappings each: above Linux's default 65,530
    const std::string message = rejection(config);
    CHECK(contains(message, "Config::max_fiber_count"));
    CHECK(contains(message, "vm.max_map_count"));
  }

  TEST_CASE("a stack class over vm.max_map_count on its own is named, with advice that fits") {
    long limit = 0;
    if (std::FILE* file = std::fopen("/proc/sys/vm/max_map_count", "r")) {
      if (std::fscanf(file, "%ld", &limit) != 1) limit = 0;
      std::fclose(file);
    }
    if (limit <= 0 || limit > (1L << 20)) return;  // unknown, or no class can exceed it
    Config config;
    config.worker_count = 1;
    StackClass large;
    large.max_fiber_count = static_cast<std::uint32_t>(limit / 2);  // alone over the limit
    config.stack_classes.push_back(large);
    const std::string message = rejection(config);
    CHECK(contains(message, "Config::stack_classes[0].max_fiber_count = " +
                                std::to_string(limit / 2) + " ('large')"));
    CHECK(contains(message, "(the largest is Config::stack_classes[0].max_fiber_count"));
    CHECK(contains(message, "add up to at most"));
    CHECK(contains(message, "vm.max_map_count"));
  }

  TEST_CASE("a stack class named by a null pointer is rejected naming the field") {
    Config config;
    config.worker_count = 1;
    config.stack_classes.push_back({.name = nullptr, .stack_size = 64 * 1024});
    CHECK(contains(rejection(config), "Config::stack_classes[0].name is a null pointer"));
    config.stack_classes[0].name = "";
    CHECK(contains(rejection(config), "Config::stack_classes[0].name is empty"));
    config.stack_classes[0].name = std::string("deep");
    CHECK(rejection(config) == "accepted");
  }

  TEST_CASE("a stack below the minimum is rejected naming fiber_stack_size") {
    Config config;
    config.worker_count = 1;
    config.fiber_stack_size = Config::kMinFiberStackSize - 1;
    CHECK(contains(rejection(config), "Config::fiber_stack_size"));
  }

  TEST_CASE("a stack size that is not a page multiple is rounded up") {
    Config config;
    config.worker_count = 1;
    config.fiber_stack_size = Config::kMinFiberStackSize + 1;
    JobSystem js{config};
    CHECK(js.config().fiber_stack_size > Config::kMinFiberStackSize);
    CHECK(js.config().fiber_stack_size % 4096 == 0);
  }

  TEST_CASE("pinning more workers than hardware threads is rejected naming pin_workers") {
    Config config;
    config.worker_count = hardware_worker_count() + 1;
    config.fiber_count = config.worker_count + 1;
    config.pin_workers = true;
    CHECK(contains(rejection(config), "Config::pin_workers"));
  }

  TEST_CASE("an unknown idle policy is rejected naming idle_policy") {
    Config config;
    config.worker_count = 1;
    config.idle_policy = static_cast<IdlePolicy>(7);
    CHECK(contains(rejection(config), "Config::idle_policy"));
  }

  TEST_CASE("tracing with no room for events is rejected naming trace_events_per_worker") {
    Config config;
    config.worker_count = 1;
    config.tracing = true;
    config.trace_events_per_worker = 0;
    CHECK(contains(rejection(config), "Config::trace_events_per_worker"));
  }

  TEST_CASE("tracing at its documented maximum is rejected naming the fields, not bad_alloc") {
    // 2^26 events x 1,024 workers x 32 bytes = 2 TiB of trace buffers.
    Config config;
    config.worker_count = 1024;
    config.fiber_count = 1025;
    config.tracing = true;
    config.trace_events_per_worker = std::size_t{1} << 26;
    const std::string message = rejection(config);
    INFO(message);
    CHECK(contains(message, "Config::trace_events_per_worker (67108864)"));
    CHECK(contains(message, "Config::worker_count"));
    CHECK(contains(message, "physical memory"));
  }

  TEST_CASE("pinned workers and the spin policy run jobs") {
    Config config;
    config.worker_count = 1;
    config.pin_workers = true;
    config.idle_policy = IdlePolicy::Spin;
    JobSystem js{config};
    int value = 0;
    Counter done;
    js.run(done, [&value] { value = 7; });
    js.wait(done);
    CHECK(value == 7);
  }
}
