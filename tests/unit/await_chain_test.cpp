// Await chains (fiberjob/await_chain.hpp): a job's root task awaits chain_f, which awaits
// chain_g, which awaits chain_h. The chain is read from inside chain_h (current_await_chain),
// from write_diagnostics while chain_h is suspended, and from an exception chain_h throws.

#include <doctest/doctest.h>
#include <fiberjob/fiberjob.hpp>

#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>

#include "support/config.hpp"
#include "support/watchdog.hpp"
#include "symbolize.hpp"

using namespace fiberjob;
using namespace std::chrono_literals;

namespace {

/// What chain_h does once it runs.
enum class Inner { ReadChain, Suspend, Throw };

struct Scenario {
  Inner inner = Inner::ReadChain;
  Counter gate;  // Suspend: chain_h waits on it
  std::atomic<bool> suspending{false};
  AwaitChain chain;     // ReadChain: the chain chain_h saw; Throw: the caught one's
  bool caught = false;  // Throw: the root caught the exception
};

Task<int> chain_h(Context& ctx, Scenario& s) {
  if (s.inner == Inner::ReadChain) s.chain = co_await current_await_chain();
  if (s.inner == Inner::Suspend) {
    s.suspending = true;
    co_await ctx.wait(s.gate);
  }
  if (s.inner == Inner::Throw) throw std::runtime_error("chain_h failed");
  co_return 1;
}

Task<int> chain_g(Context& ctx, Scenario& s) {
  const int value = co_await chain_h(ctx, s);
  co_return value + 1;
}

Task<int> chain_f(Context& ctx, Scenario& s) {
  const int value = co_await chain_g(ctx, s);
  co_return value + 1;
}

Task<> chain_root(Context& ctx, Scenario& s) {
  try {
    static_cast<void>(co_await chain_f(ctx, s));
  } catch (const std::runtime_error&) {
    s.caught = true;
    s.chain = await_chain_of(std::current_exception());
  }
}

Task<int> churn_leaf(Context& ctx) {
  co_await ctx.yield();  // suspends: the chain is live while other tasks come and go
  co_return 1;
}

Task<int> churn_middle(Context& ctx) { co_return co_await churn_leaf(ctx) + 1; }

Task<> churn_root(Context& ctx, int rounds) {
  for (int i = 0; i < rounds; ++i) static_cast<void>(co_await churn_middle(ctx));
}

/// The function names of `chain`'s frames, innermost first.
std::vector<std::string> names(const AwaitChain& chain) {
  std::vector<std::string> result;
  for (std::size_t i = 0; i < chain.size; ++i) {
    result.push_back(detail::symbolize(chain.frames[i].function).function);
  }
  return result;
}

/// Checks that `chain` is chain_h, chain_g, chain_f, chain_root, and that each outer frame's
/// suspension point lies in that frame's own function (its co_await of the inner task).
void check_chain(const AwaitChain& chain) {
  REQUIRE(chain.size == 4);
  CHECK_FALSE(chain.truncated);
  const std::vector<std::string> found = names(chain);
  const char* expected[] = {"chain_h(", "chain_g(", "chain_f(", "chain_root("};
  // The coroutine's own name and signature (g++'s ".actor" and clang++'s ".resume" functions
  // are named after it, with other parameters).
  CHECK(found[0] ==
        "(anonymous namespace)::chain_h(fiberjob::Context&, "
        "(anonymous namespace)::Scenario&)");
  for (std::size_t i = 0; i < 4; ++i) {
    INFO("frame ", i, ": ", found[i]);
    CHECK(found[i].find(expected[i]) != std::string::npos);
    if (i > 0) {
      REQUIRE(chain.frames[i].suspended_at != nullptr);
      CHECK(detail::symbolize(chain.frames[i].suspended_at).function == found[i]);
    }
  }
}

std::string run_scenario(Scenario& s, bool track, bool capture, bool diagnostics) {
  Config config = test::config_with(2);
  config.track_coroutine_jobs = track;
  config.capture_await_chains = capture;
  JobSystem js{config};
  Counter done;
  js.run(done, [&s](Context& ctx) { return chain_root(ctx, s); });
  std::string report;
  if (diagnostics) {
    while (!s.suspending.load()) std::this_thread::yield();
    // Until the report shows the wait: chain_h records it just before it links its wait.
    while (report.find("waits on counter") == std::string::npos) {
      std::FILE* file = std::tmpfile();
      REQUIRE(file != nullptr);
      write_diagnostics(file);
      std::rewind(file);
      report.clear();
      char buffer[4096];
      for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file)) > 0;) {
        report.append(buffer, n);
      }
      std::fclose(file);
    }
    s.gate.signal();
  }
  js.wait(done);
  return report;
}

}  // namespace

TEST_SUITE("await chain") {
  TEST_CASE("current_await_chain inside a task three deep names it and its three awaiters") {
    test::Watchdog watchdog("await chain: current", 60s);
    Scenario s;
    run_scenario(s, false, false, false);
    check_chain(s.chain);
    // Frame 0 is suspended at the co_await current_await_chain() in chain_h.
    REQUIRE(s.chain.frames[0].suspended_at != nullptr);
    CHECK(detail::symbolize(s.chain.frames[0].suspended_at).function == names(s.chain).front());
    const std::string text = to_string(s.chain);
    INFO(text);
    const std::size_t h = text.find("#0 (anonymous namespace)::chain_h(");
    const std::size_t root = text.find("#3 (anonymous namespace)::chain_root(");
    CHECK(h != std::string::npos);
    CHECK(root != std::string::npos);
    CHECK(h < root);
  }

  TEST_CASE("write_diagnostics prints a suspended coroutine job's chain, innermost first") {
    test::Watchdog watchdog("await chain: diagnostics", 60s);
    Scenario s;
    s.inner = Inner::Suspend;
    s.gate.add(1);
    const std::string report = run_scenario(s, true, false, true);
    INFO(report);
    char expected[128];
    std::snprintf(expected, sizeof expected,
                  "coroutine job 1: waits on counter %p; await chain (innermost first):",
                  static_cast<void*>(&s.gate));
    const std::size_t header = report.find(expected);
    REQUIRE(header != std::string::npos);
    std::size_t at = header;
    for (const char* name :
         {"#0 (anonymous namespace)::chain_h(", "#1 (anonymous namespace)::chain_g(",
          "#2 (anonymous namespace)::chain_f(", "#3 (anonymous namespace)::chain_root("}) {
      const std::size_t found = report.find(name, at);
      CHECK_MESSAGE(found != std::string::npos, name);
      if (found != std::string::npos) at = found;
    }
    CHECK(report.find("coroutine jobs alive (Config::track_coroutine_jobs): 1") !=
          std::string::npos);
  }

  TEST_CASE("an exception from three tasks deep carries its chain when capture is on") {
    test::Watchdog watchdog("await chain: exception", 60s);
    Scenario s;
    s.inner = Inner::Throw;
    run_scenario(s, false, true, false);
    REQUIRE(s.caught);
    check_chain(s.chain);
    CHECK(s.chain.frames[0].suspended_at == nullptr);  // the throw site is not recorded
  }

  TEST_CASE("without capture_await_chains no chain is kept for an exception") {
    Scenario s;
    s.inner = Inner::Throw;
    run_scenario(s, false, false, false);
    REQUIRE(s.caught);
    CHECK(s.chain.size == 0);
    CHECK(to_string(s.chain) == "  (no await chain)\n");
  }

  TEST_CASE("write_diagnostics walks chains while their tasks are created and destroyed") {
    // Under ASan and TSan: the walker lock keeps a walked task's frame alive and its links
    // ordered (await_chain.cpp).
    test::Watchdog watchdog("await chain: churn", 120s);
    Config config = test::config_with(2);
    config.track_coroutine_jobs = true;
    JobSystem js{config};
    Counter done;
    for (int j = 0; j < 4; ++j) js.run(done, [](Context& ctx) { return churn_root(ctx, 2000); });
    std::FILE* sink = std::tmpfile();
    REQUIRE(sink != nullptr);
    int reports = 0;
    while (!done.done() || reports < 3) {
      write_diagnostics(sink);
      ++reports;
    }
    js.wait(done);
    std::fclose(sink);
    CHECK(reports >= 3);
  }
}
