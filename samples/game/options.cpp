// Command line parsing for the game-frame sample: every mistake gets a message, never a crash.

#include "options.hpp"

#include <charconv>
#include <string_view>

namespace game {
namespace {

bool parse_number(std::string_view text, std::uint64_t max, std::uint64_t& out) {
  std::uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || value > max) return false;
  out = value;
  return true;
}

// Stores `value` for `arg`, an option that takes one. Returns false, with `error` naming the
// option and the range, when a number is malformed or out of range.
bool set_value(Options& options, std::string_view arg, std::string_view value, std::string& error) {
  std::uint64_t number = 0;
  auto numeric = [&](std::uint64_t min, std::uint64_t max) {
    if (parse_number(value, max, number) && number >= min) return true;
    error = std::string(arg) + " expects a whole number in [" + std::to_string(min) + ", " +
            std::to_string(max) + "], got '" + std::string(value) + "'";
    return false;
  };
  if (arg == "--map") {
    options.map_path = value;
  } else if (arg == "--trace") {
    options.trace_path = value;
  } else if (arg == "--workers") {
    if (!numeric(1, 256)) return false;
    options.workers = static_cast<std::uint32_t>(number);
  } else if (arg == "--agents") {
    if (!numeric(1, 100'000)) return false;
    options.agents = static_cast<std::uint32_t>(number);
  } else if (arg == "--frames") {
    if (!numeric(1, 1'000'000)) return false;
    options.frames = static_cast<std::uint32_t>(number);
  } else if (arg == "--seed") {
    if (!numeric(0, UINT64_MAX)) return false;
    options.seed = number;
  } else if (arg == "--rss-every") {
    if (!numeric(1, 1'000'000)) return false;
    options.rss_every = static_cast<std::uint32_t>(number);
  } else if (arg == "--replace-every") {
    if (!numeric(1, 1'000'000)) return false;
    options.replace_every = static_cast<std::uint32_t>(number);
  }
  return true;
}

// --serial uses no job system threads and records no timeline: reject the options that ask
// for them. Returns false with `error` set.
bool check_serial(const Options& options, std::string& error) {
  if (options.serial && options.workers != 0) {
    error = "--serial runs every frame on the main thread; it takes no --workers";
    return false;
  }
  if (options.serial && options.replace_every != 0) {
    error = "--replace-every cancels AI coroutines, which --serial does not run";
    return false;
  }
  if (options.serial && options.stop_tokens) {
    error = "--stop-tokens gives the AI coroutines stop tokens, which --serial does not run";
    return false;
  }
  if (options.serial && !options.trace_path.empty()) {
    error = "--trace records the job system's timeline, which --serial does not use";
    return false;
  }
  return true;
}

}  // namespace

std::string usage() {
  return "usage: game_frame [--map PATH] [--workers N | --serial] [--agents N] [--frames N]\n"
         "                  [--seed N] [--trace PATH] [--check] [--rss-every N]\n"
         "                  [--replace-every N] [--stop-tokens]\n"
         "  --map PATH     Moving AI .map file (default: den520d.map)\n"
         "  --workers N    worker threads, 1..256 (default: hardware threads)\n"
         "  --serial       run every frame on the main thread with no jobs: the same work, each\n"
         "                 job called inline where the frame would spawn it (a baseline)\n"
         "  --agents N     agents, 1..100000 (default 2000)\n"
         "  --frames N     frames at a fixed 60 Hz step, 1..1000000 (default 300)\n"
         "  --seed N       random seed for spawn points and goals\n"
         "  --trace PATH   write a Chrome Trace Event JSON timeline (open in ui.perfetto.dev)\n"
         "  --check        verify every path against Dijkstra; with arena.map also solve the\n"
         "                 130 arena.map.scen queries and compare with the published lengths\n"
         "  --rss-every N  every N frames, 1..1000000, print the resident set size (KiB) and the\n"
         "                 frame times of those N frames: 'rss frame F kib K frame ms p50 ..'\n"
         "  --replace-every N  every N frames, 1..1000000, replace one agent's behaviour: its\n"
         "                 AI coroutine is cancelled (stop token) and a new one takes over\n"
         "  --stop-tokens  spawn every AI coroutine with a stop token, as --replace-every does,\n"
         "                 but never stop one: the cost of stoppable waits alone (the same work)\n";
}

std::optional<Options> parse_options(int argc, char** argv, const std::string& default_map,
                                     std::string& error) {
  Options options;
  options.map_path = default_map;
  error.clear();
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return std::nullopt;
    if (arg == "--check") {
      options.check = true;
      continue;
    }
    if (arg == "--serial") {
      options.serial = true;
      continue;
    }
    if (arg == "--stop-tokens") {
      options.stop_tokens = true;
      continue;
    }
    const bool takes_value = arg == "--map" || arg == "--workers" || arg == "--agents" ||
                             arg == "--frames" || arg == "--trace" || arg == "--seed" ||
                             arg == "--rss-every" || arg == "--replace-every";
    if (!takes_value) {
      error = "unknown argument '" + std::string(arg) + "'";
      return std::nullopt;
    }
    if (i + 1 >= argc) {
      error = std::string(arg) + " needs a value";
      return std::nullopt;
    }
    if (!set_value(options, arg, argv[++i], error)) return std::nullopt;
  }
  if (!check_serial(options, error)) return std::nullopt;
  return options;
}

}  // namespace game
