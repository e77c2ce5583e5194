#include "grid_map.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <fstream>
#include <optional>
#include <ostream>
#include <sstream>
#include <string_view>
#include <system_error>

namespace game {

namespace {

/// Reads lines one at a time, counting them (1-based) and dropping a trailing '\r'.
class LineReader {
 public:
  LineReader(std::istream& in, const std::string& source) : in_(in), source_(source) {}

  /// Reads the next line into `line`; false at end of input.
  bool next(std::string& line) {
    if (!std::getline(in_, line)) {
      if (in_.bad()) fail("read error");
      return false;
    }
    ++line_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return true;
  }

  /// Throws MapError for the current line.
  [[noreturn]] void fail(const std::string& problem) const {
    throw MapError(source_, line_, problem);
  }
  /// Throws MapError for the line after the current one (used at end of input).
  [[noreturn]] void fail_at_end(const std::string& problem) const {
    throw MapError(source_, line_ + 1, problem);
  }

 private:
  std::istream& in_;
  const std::string& source_;
  int line_ = 0;
};

/// `text` quoted for a message, shortened to 40 characters, control bytes shown as '?'.
std::string quoted(std::string_view text) {
  constexpr std::size_t limit = 40;
  std::string out = "'";
  for (std::size_t i = 0; i < text.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  out += text.size() > limit ? "...'" : "'";
  return out;
}

/// Describes one character for a message: 'x' or a hex code for unprintable bytes.
std::string describe_char(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  if (c >= 0x21 && c < 0x7f) return std::string("'") + ch + "'";
  constexpr std::string_view hex = "0123456789abcdef";
  return std::string("byte 0x") + hex[c >> 4] + hex[c & 0xf];
}

/// Splits on runs of spaces and tabs.
std::vector<std::string_view> split_words(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const std::size_t begin = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > begin) words.push_back(line.substr(begin, i - begin));
  }
  return words;
}

/// Splits on every tab (empty fields are kept).
std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t begin = 0;
  for (std::size_t tab = line.find('\t'); tab != std::string_view::npos;
       tab = line.find('\t', begin)) {
    fields.push_back(line.substr(begin, tab - begin));
    begin = tab + 1;
  }
  fields.push_back(line.substr(begin));
  return fields;
}

/// The whole of `text` as an int, or nothing.
std::optional<int> parse_int(std::string_view text) {
  int value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end) return std::nullopt;
  return value;
}

/// The whole of `text` as a finite double, or nothing.
std::optional<double> parse_double(std::string_view text) {
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc{} || ptr != end || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

bool blank(std::string_view line) { return split_words(line).empty(); }

struct MapHeader {
  int width = 0;
  int height = 0;
};

/// Parses `height N` / `width N` into `header`; throws on anything else.
void parse_dimension_line(LineReader& reader, std::string_view line, MapHeader& header) {
  const auto words = split_words(line);
  const bool is_height = !words.empty() && words[0] == "height";
  const bool is_width = !words.empty() && words[0] == "width";
  if (!is_height && !is_width) {
    reader.fail("unexpected header line " + quoted(line) +
                ", expected 'height <n>', 'width <n>' or 'map'");
  }
  int& field = is_height ? header.height : header.width;
  const std::string name(words[0]);
  if (field != 0) reader.fail("duplicate '" + name + "' header line");
  const auto value = words.size() == 2 ? parse_int(words[1]) : std::nullopt;
  if (!value || *value < 1 || *value > GridMap::max_dimension) {
    reader.fail("garbled header line " + quoted(line) + ": expected '" + name +
                " <n>' with n an integer in [1, " + std::to_string(GridMap::max_dimension) + "]");
  }
  field = *value;
}

/// Reads `type octile`, the dimension lines and `map`.
MapHeader parse_map_header(LineReader& reader) {
  std::string line;
  if (!reader.next(line)) reader.fail_at_end("empty file, expected header line 'type octile'");
  const auto words = split_words(line);
  if (words.size() != 2 || words[0] != "type") {
    reader.fail("expected header line 'type octile', found " + quoted(line));
  }
  if (words[1] != "octile") {
    reader.fail("unsupported map type " + quoted(words[1]) + ", expected 'octile'");
  }
  MapHeader header;
  while (true) {
    if (!reader.next(line)) reader.fail_at_end("file ends before the 'map' header line");
    if (split_words(line).size() == 1 && split_words(line)[0] == "map") break;
    parse_dimension_line(reader, line, header);
  }
  if (header.height == 0) reader.fail("header has no 'height <n>' line before 'map'");
  if (header.width == 0) reader.fail("header has no 'width <n>' line before 'map'");
  return header;
}

/// 1 for passable terrain, 0 for blocked terrain, -1 for an unknown character.
int classify_terrain(char c) {
  switch (c) {
    case '.':
    case 'G':
      return 1;
    case '@':
    case 'O':
    case 'T':
    case 'S':
    case 'W':
      return 0;
    default:
      return -1;
  }
}

}  // namespace

namespace {

// Built with append(): g++ 12 at -O3 reports a false -Wrestrict on chained operator+ here.
std::string map_error_message(const std::string& source, int line, const std::string& problem) {
  std::string message = source;
  if (line > 0) message.append(":").append(std::to_string(line));
  message.append(": ").append(problem);
  return message;
}

}  // namespace

MapError::MapError(const std::string& source, int line, const std::string& problem)
    : std::runtime_error(map_error_message(source, line, problem)), source_(source), line_(line) {}

std::ostream& operator<<(std::ostream& out, Cell cell) {
  return out << '(' << cell.x << ", " << cell.y << ')';
}

std::string to_string(Cell cell) {
  return '(' + std::to_string(cell.x) + ", " + std::to_string(cell.y) + ')';
}

GridMap GridMap::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw MapError(path, 0, "cannot open the map file for reading");
  return parse(in, path);
}

GridMap GridMap::parse(std::istream& in, const std::string& source_name) {
  LineReader reader(in, source_name);
  const MapHeader header = parse_map_header(reader);
  GridMap map;
  map.width_ = header.width;
  map.height_ = header.height;
  const auto cells =
      static_cast<std::size_t>(header.width) * static_cast<std::size_t>(header.height);
  map.terrain_.reserve(std::min<std::size_t>(cells, std::size_t{1} << 24));
  std::string line;
  for (int y = 0; y < header.height; ++y) {
    if (!reader.next(line)) {
      reader.fail_at_end("file ends after " + std::to_string(y) + " map rows, expected " +
                         std::to_string(header.height));
    }
    if (line.size() != static_cast<std::size_t>(header.width)) {
      reader.fail("map row y=" + std::to_string(y) + " has " + std::to_string(line.size()) +
                  " characters, expected width " + std::to_string(header.width));
    }
    for (std::size_t x = 0; x < line.size(); ++x) {
      if (classify_terrain(line[x]) < 0) {
        reader.fail("unknown terrain character " + describe_char(line[x]) +
                    " at x=" + std::to_string(x) + " in map row y=" + std::to_string(y));
      }
    }
    map.terrain_ += line;
  }
  while (reader.next(line)) {
    if (!blank(line)) {
      reader.fail("unexpected text after the " + std::to_string(header.height) +
                  " map rows (more rows than the header's height?)");
    }
  }
  map.classify_cells();
  return map;
}

void GridMap::classify_cells() {
  passable_.resize(terrain_.size());
  for (std::size_t i = 0; i < terrain_.size(); ++i) {
    passable_[i] = classify_terrain(terrain_[i]) == 1 ? 1 : 0;
    passable_count_ += passable_[i];
  }
}

namespace {

constexpr std::array<const char*, 9> scenario_field_names = {
    "bucket", "map", "width", "height", "start_x", "start_y", "goal_x", "goal_y", "optimal_length"};

/// Field `i` of `fields` as an int; throws naming the field otherwise.
int int_field(LineReader& reader, const std::vector<std::string_view>& fields, std::size_t i) {
  const auto value = parse_int(fields[i]);
  if (!value) {
    reader.fail(std::string("field '") + scenario_field_names[i] +
                "' is not an integer: " + quoted(fields[i]));
  }
  return *value;
}

/// Checks that `c` lies inside the scenario's declared size.
void check_inside(LineReader& reader, const Scenario& s, Cell c, const char* what) {
  if (c.x < 0 || c.y < 0 || c.x >= s.width || c.y >= s.height) {
    reader.fail(std::string(what) + " " + to_string(c) + " lies outside the declared " +
                std::to_string(s.width) + "x" + std::to_string(s.height) + " map");
  }
}

/// Parses one nine-field query line.
Scenario parse_scenario_line(LineReader& reader, std::string_view line) {
  const auto fields = split_tabs(line);
  if (fields.size() != scenario_field_names.size()) {
    reader.fail(
        "expected 9 tab-separated fields (bucket map width height start_x start_y "
        "goal_x goal_y optimal_length), found " +
        std::to_string(fields.size()));
  }
  Scenario s;
  s.bucket = int_field(reader, fields, 0);
  s.map = std::string(fields[1]);
  s.width = int_field(reader, fields, 2);
  s.height = int_field(reader, fields, 3);
  s.start = Cell{int_field(reader, fields, 4), int_field(reader, fields, 5)};
  s.goal = Cell{int_field(reader, fields, 6), int_field(reader, fields, 7)};
  const auto length = parse_double(fields[8]);
  if (!length || *length < 0) {
    reader.fail("field 'optimal_length' is not a finite non-negative number: " + quoted(fields[8]));
  }
  s.optimal_length = *length;
  if (s.bucket < 0) reader.fail("field 'bucket' is negative");
  if (s.map.empty()) reader.fail("field 'map' is empty");
  if (s.width < 1 || s.height < 1) reader.fail("declared map width and height must be positive");
  check_inside(reader, s, s.start, "start");
  check_inside(reader, s, s.goal, "goal");
  return s;
}

}  // namespace

std::vector<Scenario> load_scenarios(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw MapError(path, 0, "cannot open the scenario file for reading");
  return parse_scenarios(in, path);
}

std::vector<Scenario> parse_scenarios(std::istream& in, const std::string& source_name) {
  LineReader reader(in, source_name);
  std::string line;
  if (!reader.next(line)) reader.fail_at_end("empty file, expected first line 'version 1'");
  const auto words = split_words(line);
  if (words.size() != 2 || words[0] != "version" || !parse_double(words[1])) {
    reader.fail("expected first line 'version <number>', found " + quoted(line));
  }
  std::vector<Scenario> scenarios;
  while (reader.next(line)) {
    if (blank(line)) continue;
    scenarios.push_back(parse_scenario_line(reader, line));
  }
  return scenarios;
}

}  // namespace game
