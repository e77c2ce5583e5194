#pragma once
// Command line of the game-frame sample.

#include <cstdint>
#include <optional>
#include <string>

namespace game {

struct Options {
  std::string map_path;             ///< --map PATH (default: den520d.map next to the sample data)
  std::uint32_t workers = 0;        ///< --workers N (0: hardware threads)
  std::uint32_t agents = 2000;      ///< --agents N
  std::uint32_t frames = 300;       ///< --frames N (fixed 60 Hz steps)
  std::string trace_path;           ///< --trace PATH (empty: no trace)
  bool check = false;               ///< --check
  std::uint64_t seed = 20260511;    ///< --seed N
  std::uint32_t rss_every = 0;      ///< --rss-every N: RSS and frame times every N frames (0: off)
  std::uint32_t replace_every = 0;  ///< --replace-every N: replace an agent's behaviour (0: off)
  bool serial = false;              ///< --serial: every frame on the main thread, no jobs
  bool stop_tokens = false;         ///< --stop-tokens: AI coroutines get a stop token (see usage)
};

/// Parses argv. On bad input returns nullopt and sets `error` to a message naming the argument
/// and what was expected; `--help` returns nullopt with `error` empty (print usage()).
std::optional<Options> parse_options(int argc, char** argv, const std::string& default_map,
                                     std::string& error);

/// The usage text.
std::string usage();

}  // namespace game
