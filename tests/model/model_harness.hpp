// Shared driver for the Relacy model checks (tests/model/*_model.cpp).
//
// Each model is an rl::test_suite run through rl::simulate with Relacy's output captured. A
// positive model must pass the whole search; a negative variant (a weakened memory order, a
// removed step) must make Relacy report a failure. The program prints one line per model and
// exits 0 only if every model behaved as expected. See docs/model_checking.md.
//
// Relacy (Debian relacy-dev) is header-only and redefines `new`, `delete`, `assert` and the
// `memory_order_*` names as macros, so the standard headers come first and nothing after the
// Relacy include names std::memory_order_*: the models spell orders as rl::mo_* with the `$`
// (call-site info) argument that Relacy's atomics take.

#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <relacy/relacy.hpp>

namespace model {

enum class Expect { Pass, Fail };

struct Search {
  rl::scheduler_type_e type = rl::sched_random;
  rl::iteration_t iterations = 100000;  // random scheduler only
  unsigned context_bound = 1;           // context-bound scheduler only
};

/// The searches both model programs use. Positive models run twice: an exhaustive search
/// (full where it finishes quickly, else context-bound: every schedule with at most N
/// preemptions; Relacy then lets a load read the latest store or the one before it) and the
/// random scheduler (any number of preemptions; loads read any of the last 3 stores the memory
/// model allows). Negative variants use the random scheduler and stop at the first failure
/// found. Budgets and run times: docs/model_checking.md.
inline const Search kRandom{rl::sched_random, 500000, 0};
inline const Search kRandomNegative{rl::sched_random, 200000, 0};
inline const Search kFull{rl::sched_full, 0, 0};
inline const Search kBound2{rl::sched_bound, 0, 2};
inline const Search kBound3{rl::sched_bound, 0, 3};
inline const Search kBound4{rl::sched_bound, 0, 4};
inline const Search kBound6{rl::sched_bound, 0, 6};

inline const char* search_name(rl::scheduler_type_e type) {
  switch (type) {
    case rl::sched_random:
      return "random";
    case rl::sched_bound:
      return "context-bound";
    case rl::sched_full:
      return "full";
    default:
      return "?";
  }
}

// Relacy replaces the global operator new/delete, and while a simulation runs it treats every
// delete as one of its own allocations; a std::ostringstream that grows its buffer while Relacy
// prints a history would then "free an incorrect address". So Relacy's output goes to a
// temporary file through this allocation-free stream buffer and is read back afterwards.
class FileBuf : public std::streambuf {
 public:
  explicit FileBuf(std::FILE* file) : file_(file) {}

 protected:
  int_type overflow(int_type ch) override {
    if (ch != traits_type::eof()) std::fputc(ch, file_);
    return traits_type::not_eof(ch);
  }
  std::streamsize xsputn(const char* text, std::streamsize count) override {
    return static_cast<std::streamsize>(
        std::fwrite(text, 1, static_cast<std::size_t>(count), file_));
  }

 private:
  std::FILE* file_;
};

inline std::string read_all(std::FILE* file) {
  std::string text;
  std::fflush(file);
  std::rewind(file);
  char chunk[4096];
  std::size_t got = 0;
  while ((got = std::fread(chunk, 1, sizeof chunk, file)) > 0) text.append(chunk, got);
  return text;
}

/// Spin step of every busy-wait in the models (cpu_relax / sched_yield in the code).
inline void spin() { rl::yield(1, $); }

/// Coverage: how often the search reached the interleavings a positive model is about. Each
/// model file names its events and keeps one plain counter per event (Relacy runs every
/// modelled thread on one OS thread; the counters never affect the model). Returns the
/// non-zero counts as "name count, ..." (or "none") and resets them.
template <std::size_t N>
std::string coverage_line(const char* const (&names)[N], unsigned long long (&counts)[N]) {
  std::string text;
  for (std::size_t i = 0; i < N; ++i) {
    if (counts[i] == 0) continue;
    text += text.empty() ? "" : ", ";
    text += names[i];
    text += ' ';
    text += std::to_string(counts[i]);
    counts[i] = 0;
  }
  return text.empty() ? "none" : text;
}

struct Options {
  bool verbose = false;           // print Relacy's trace for every failure, expected or not
  std::vector<std::string> only;  // run only models whose name contains one of these
  double scale = 1.0;             // multiplies the random scheduler's iteration counts
  int search_override = -1;       // --search random|bound|full: ignore the model's own choice
  unsigned bound_override = 0;    // --bound N: context bound for --search bound
};

class Runner {
 public:
  Runner(const char* program, int argc, char** argv) : program_(program) {
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--verbose" || arg == "-v") {
        options_.verbose = true;
      } else if (arg == "--scale" && i + 1 < argc) {
        options_.scale = std::atof(argv[++i]);
      } else if (arg == "--search" && i + 1 < argc) {
        const std::string type = argv[++i];
        options_.search_override = type == "full"    ? rl::sched_full
                                   : type == "bound" ? rl::sched_bound
                                                     : rl::sched_random;
      } else if (arg == "--bound" && i + 1 < argc) {
        options_.bound_override = static_cast<unsigned>(std::atoi(argv[++i]));
      } else if (arg == "--help" || arg == "-h") {
        std::printf(
            "usage: %s [--verbose] [--scale X] [--search random|bound|full] [--bound N] "
            "[NAME...]\n"
            "  runs the Relacy models (whose name contains one of NAME, if given);\n"
            "  --scale multiplies the random scheduler's iterations; --verbose prints\n"
            "  Relacy's execution history for every failure found; --search/--bound override\n"
            "  each model's search (for experiments: the defaults are what the tests use).\n",
            program);
        std::exit(0);
      } else {
        options_.only.push_back(arg);
      }
    }
  }

  /// Optional: returns (and resets) a line of event counts gathered during the last model;
  /// printed under each passing model as evidence of what the search reached.
  std::string (*coverage)() = nullptr;

  /// Runs one model. `bug` describes what a negative variant is expected to make Relacy find.
  template <typename Suite>
  void run(const char* name, Expect expect, Search search, const char* bug = nullptr) {
    if (!selected(name)) return;
    if (options_.search_override >= 0) {
      search.type = static_cast<rl::scheduler_type_e>(options_.search_override);
    }
    if (options_.bound_override != 0) search.context_bound = options_.bound_override;
    rl::test_params params;
    std::FILE* file = std::tmpfile();
    if (file == nullptr) {
      std::perror("tmpfile");
      std::exit(2);
    }
    FileBuf buffer(file);
    std::ostream out(&buffer);
    params.output_stream = &out;
    params.progress_stream = &out;
    params.search_type = search.type;
    params.iteration_count =
        static_cast<rl::iteration_t>(static_cast<double>(search.iterations) * options_.scale);
    if (params.iteration_count == 0) params.iteration_count = 1;
    params.context_bound = search.context_bound;
    // Spinning waiters yield; a lost wake-up shows up as a waiter that spins until this limit
    // (Relacy reports LIVELOCK).
    params.execution_depth_limit = 4000;

    const auto start = std::chrono::steady_clock::now();
    rl::simulate<Suite>(params);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out.flush();
    const std::string output = read_all(file);
    std::fclose(file);

    const bool found = params.test_result != rl::test_result_success;
    const bool as_expected = (expect == Expect::Pass) ? !found : found;
    char search_text[64];
    if (search.type == rl::sched_bound) {
      std::snprintf(search_text, sizeof search_text, "context-bound %u", search.context_bound);
    } else {
      std::snprintf(search_text, sizeof search_text, "%s", search_name(search.type));
    }
    const unsigned long long iterations = params.stop_iteration + (found ? 1 : 0);
    const char* verdict = expect == Expect::Pass
                              ? (found ? "UNEXPECTED FAILURE" : "pass, as expected")
                              : (found ? "fails, as expected" : "NOT CAUGHT (expected to fail)");
    if (!found) {
      std::printf("%-4s %-40s %s: no failure in %llu iterations (%s search), %.2f s\n",
                  as_expected ? "ok" : "FAIL", name, verdict, iterations, search_text, seconds);
    } else {
      std::printf("%-4s %-40s %s: %s at iteration %llu (%s search), %.2f s\n",
                  as_expected ? "ok" : "FAIL", name, verdict,
                  first_failure_line(output, params.test_result).c_str(), iterations, search_text,
                  seconds);
    }
    if (expect == Expect::Fail && bug != nullptr) std::printf("     the bug: %s\n", bug);
    if ((found && !as_expected) || (found && options_.verbose)) {
      std::printf("----- Relacy output for %s -----\n%s----- end of %s -----\n", name,
                  output.c_str(), name);
    }
    if (coverage != nullptr) {
      const std::string reached = coverage();
      if (!found) std::printf("     reached: %s\n", reached.c_str());
    }
    std::fflush(stdout);
    total_seconds_ += seconds;
    (as_expected ? passed_ : failed_) += 1;
  }

  /// Runs a positive model once per search in `searches`; each run must find no failure.
  template <typename Suite>
  void pass(const char* name, std::initializer_list<Search> searches) {
    for (const Search& search : searches) run<Suite>(name, Expect::Pass, search);
  }

  /// Runs a negative variant with the random scheduler; Relacy must report `bug`.
  template <typename Suite>
  void fail(const char* name, const char* bug) {
    run<Suite>(name, Expect::Fail, kRandomNegative, bug);
  }

  /// Prints the summary line and returns the exit code.
  int finish() const {
    std::printf("%s: %d passed, %d failed (%.1f s)\n", program_, passed_, failed_, total_seconds_);
    if (passed_ + failed_ == 0) {
      std::printf("%s: no model matched the names given\n", program_);
      return 1;
    }
    return failed_ == 0 ? 0 : 1;
  }

 private:
  bool selected(const char* name) const {
    if (options_.only.empty()) return true;
    for (const std::string& part : options_.only) {
      if (std::strstr(name, part.c_str()) != nullptr) return true;
    }
    return false;
  }

  // Relacy prints the test name, then the failure ("USER ASSERT FAILED (assertion: ...)").
  static std::string first_failure_line(const std::string& text, rl::test_result_e result) {
    std::istringstream lines(text);
    std::string line;
    std::getline(lines, line);  // the test's type name
    while (std::getline(lines, line)) {
      if (!line.empty()) return line;
    }
    return rl::test_result_str(result);
  }

  const char* program_;
  Options options_;
  int passed_ = 0;
  int failed_ = 0;
  double total_seconds_ = 0;
};

}  // namespace model
