#pragma once
// Helpers of the trace tests: a traced configuration, the trace as text, and counting in it.

#include <fiberjob/fiberjob.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "config.hpp"

namespace fiberjob::test {

/// config_with(workers) with Config::tracing on.
inline Config traced_config(std::uint32_t workers) {
  Config config = config_with(workers);
  config.tracing = true;
  return config;
}

/// Writes `js`'s trace to the file `path`, removes the file, and returns its text.
inline std::string trace_text(JobSystem& js, const std::string& path) {
  js.write_trace(path);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::remove(path.c_str());
  return text.str();
}

/// How often `part` occurs in `text` (overlapping occurrences count).
inline std::size_t count(const std::string& text, const std::string& part) {
  std::size_t n = 0;
  for (std::size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) {
    ++n;
  }
  return n;
}

}  // namespace fiberjob::test
