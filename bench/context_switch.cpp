// The physical floor of a fiber switch: two Boost.Context fibers (boost::context::fiber, the API
// fiberjob switches with) resuming each other on one thread, nothing else. One resume is one
// switch; the yield row divides by the switches made.

#include <boost/context/fiber.hpp>
#include <boost/version.hpp>

#include <cstdint>
#include <string>
#include <utility>

#include "harness.hpp"

namespace bench {
namespace {

namespace ctx = boost::context;

Run raw_switch(const Sizes& sizes) {
  const std::int64_t round_trips = sizes.yields / 2;  // each is two switches
  std::int64_t entered = 0;
  bool stop = false;
  ctx::fiber other{[&entered, &stop](ctx::fiber&& back) {
    while (!stop) {
      ++entered;
      back = std::move(back).resume();
    }
    return std::move(back);
  }};
  std::int64_t returned = 0;
  Run run;
  const Stopwatch watch;
  for (std::int64_t i = 0; i < round_trips; ++i) {
    other = std::move(other).resume();
    ++returned;
  }
  run.ns = watch.ns();
  stop = true;
  other = std::move(other).resume();  // lets the fiber return
  run.ops = static_cast<double>(2 * round_trips);
  run.result = entered + returned;  // switches made: every one alternates by construction
  return run;
}

}  // namespace

void register_context_switch(Registry& registry) {
  registry.system(
      {"boost_context",
       "Boost.Context (raw switch)",
       std::to_string(BOOST_VERSION / 100000) + "." + std::to_string(BOOST_VERSION / 100 % 1000),
       "two boost::context::fiber resuming each other on the main thread "
       "(default 128 KiB stacks); no scheduler",
       "n/a (one thread, never idle)",
       {},
       {}});
  registry.add("yield", "boost_context", raw_switch);
}

}  // namespace bench
