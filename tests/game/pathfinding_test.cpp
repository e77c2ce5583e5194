// Grid-map loading and pathfinding of the game-frame sample (samples/game): A* against the
// published Moving AI Lab optimal lengths and a Dijkstra reference, the path validator, and
// MapError on malformed input. FIBERJOB_SAMPLE_DATA_DIR (defined by the build) names
// samples/data.

#include <doctest/doctest.h>

#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <memory_resource>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "grid_map.hpp"
#include "pathfinding.hpp"

#ifndef FIBERJOB_SAMPLE_DATA_DIR
#error "the build defines FIBERJOB_SAMPLE_DATA_DIR as the path of samples/data"
#endif

using namespace game;

namespace {

std::string data_file(const std::string& name) {
  return std::string(FIBERJOB_SAMPLE_DATA_DIR) + "/" + name;
}

/// A map built from rows of terrain characters (all the same length).
GridMap make_map(std::initializer_list<std::string_view> rows) {
  std::ostringstream text;
  text << "type octile\nheight " << rows.size() << "\nwidth " << rows.begin()->size() << "\nmap\n";
  for (std::string_view row : rows) text << row << '\n';
  std::istringstream in(text.str());
  return GridMap::parse(in, "inline map");
}

/// A fresh directory under the system temp directory, removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    std::random_device random;
    for (int attempt = 0; attempt < 100; ++attempt) {
      path_ = std::filesystem::temp_directory_path() /
              ("fiberjob_pathfinding_test_" + std::to_string(random()));
      if (std::filesystem::create_directory(path_)) return;
    }
    FAIL("cannot create a temporary directory");
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// Writes `content` to `name` inside the directory; returns the file's path.
  std::string write(const std::string& name, const std::string& content) const {
    const std::string file = (path_ / name).string();
    std::ofstream(file, std::ios::binary) << content;
    return file;
  }

 private:
  std::filesystem::path path_;
};

/// The MapError that `load` throws, or nothing if it throws none.
template <class Load>
std::optional<MapError> map_error_from(Load&& load) {
  try {
    load();
  } catch (const MapError& error) {
    return error;
  }
  return std::nullopt;
}

enum class Kind { map, scen };

/// Writes malformed map or scenario files into a fresh temporary directory and checks the
/// MapError that loading each throws.
class BadFiles {
 public:
  explicit BadFiles(Kind kind) : kind_(kind) {}

  /// Checks that loading `content` throws MapError at `line` whose message names the file and
  /// line and mentions `needle`.
  void operator()(const std::string& content, int line, const std::string& needle) const {
    const std::string file = dir_.write(kind_ == Kind::scen ? "bad.map.scen" : "bad.map", content);
    const auto error = map_error_from([&] {
      if (kind_ == Kind::scen) {
        load_scenarios(file);
      } else {
        GridMap::load(file);
      }
    });
    REQUIRE(error.has_value());
    const std::string what = error->what();
    CAPTURE(what);
    CHECK(what.find(file + ":" + std::to_string(line) + ": ") == 0);
    CHECK(what.find(needle) != std::string::npos);
    CHECK(error->line() == line);
  }

  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  Kind kind_;
};

}  // namespace

TEST_SUITE("pathfinding") {
  TEST_CASE("every arena.map.scen query is solved with its published optimal length") {
    const GridMap map = GridMap::load(data_file("arena.map"));
    const std::vector<Scenario> scenarios = load_scenarios(data_file("arena.map.scen"));
    REQUIRE(scenarios.size() == 130);
    SearchScratch scratch(map);
    std::pmr::monotonic_buffer_resource frame;
    for (const Scenario& s : scenarios) {
      CAPTURE(s.start);
      CAPTURE(s.goal);
      CHECK(s.map == "arena.map");
      CHECK(s.width == map.width());
      CHECK(s.height == map.height());
      const PathResult result = find_path(map, s.start, s.goal, scratch, &frame);
      REQUIRE(result.found);
      CHECK(std::abs(result.length - s.optimal_length) < 1e-4);
      CHECK(result.length == path_length(result.cells));
      std::string why;
      CHECK_MESSAGE(validate_path(map, result.cells, s.start, s.goal, &why), why);
    }
  }

  TEST_CASE("A* lengths on den520d.map equal the Dijkstra reference for 200 random pairs") {
    const GridMap map = GridMap::load(data_file("den520d.map"));
    std::vector<Cell> open_cells;
    for (int y = 0; y < map.height(); ++y) {
      for (int x = 0; x < map.width(); ++x) {
        if (map.passable(x, y)) open_cells.push_back({x, y});
      }
    }
    REQUIRE(open_cells.size() == map.passable_count());
    std::mt19937 random(20240521);
    std::uniform_int_distribution<std::size_t> pick(0, open_cells.size() - 1);
    SearchScratch scratch(map);
    std::pmr::monotonic_buffer_resource frame;
    int reachable = 0;
    for (int i = 0; i < 200; ++i) {
      const Cell start = open_cells[pick(random)];
      const Cell goal = open_cells[pick(random)];
      CAPTURE(start);
      CAPTURE(goal);
      const double reference = dijkstra_distance(map, start, goal);
      {
        const PathResult result = find_path(map, start, goal, scratch, &frame);
        REQUIRE(result.found == std::isfinite(reference));
        if (result.found) {
          ++reachable;
          CHECK(std::abs(result.length - reference) < 1e-6);
          std::string why;
          CHECK_MESSAGE(validate_path(map, result.cells, start, goal, &why), why);
        }
      }
      frame.release();  // what a per-frame arena does at the end of each frame
    }
    CHECK(reachable >= 100);  // the test is about real searches, not unreachable pairs
  }

  TEST_CASE("A* agrees with Dijkstra on random small maps with many obstacles") {
    std::mt19937 random(7);
    std::bernoulli_distribution blocked(0.3);
    std::uniform_int_distribution<int> coordinate(0, 15);
    SearchScratch scratch;
    std::pmr::monotonic_buffer_resource frame;
    for (int trial = 0; trial < 300; ++trial) {
      std::ostringstream text;
      text << "type octile\nheight 16\nwidth 16\nmap\n";
      for (int y = 0; y < 16; ++y) {
        for (int x = 0; x < 16; ++x) text << (blocked(random) ? 'T' : '.');
        text << '\n';
      }
      std::istringstream in(text.str());
      const GridMap map = GridMap::parse(in, "random map");
      const Cell start{coordinate(random), coordinate(random)};
      const Cell goal{coordinate(random), coordinate(random)};
      CAPTURE(trial);
      const double reference = dijkstra_distance(map, start, goal);
      const PathResult result = find_path(map, start, goal, scratch, &frame);
      REQUIRE(result.found == std::isfinite(reference));
      if (!result.found) continue;
      CHECK(std::abs(result.length - reference) < 1e-9);
      std::string why;
      CHECK_MESSAGE(validate_path(map, result.cells, start, goal, &why), why);
    }
  }

  TEST_CASE("the larger maps load with the published sizes and passable-cell counts") {
    struct Expected {
      const char* name;
      int width;
      int height;
      std::size_t passable;
    };
    for (const Expected& e :
         {Expected{"ost003d.map", 194, 194, 13214}, Expected{"den520d.map", 256, 257, 28178},
          Expected{"brc202d.map", 530, 481, 43151}}) {
      CAPTURE(e.name);
      const GridMap map = GridMap::load(data_file(e.name));
      CHECK(map.width() == e.width);
      CHECK(map.height() == e.height);
      CHECK(map.passable_count() == e.passable);
    }
  }

  TEST_CASE("a start equal to the goal gives a one-cell path of length zero") {
    const GridMap map = make_map({"...", "...", "..."});
    SearchScratch scratch;
    const PathResult result = find_path(map, {1, 1}, {1, 1}, scratch, nullptr);
    CHECK(result.found);
    CHECK(result.length == 0);
    REQUIRE(result.cells.size() == 1);
    CHECK(result.cells[0] == Cell{1, 1});
  }

  TEST_CASE("blocked, off-map and unreachable endpoints give no path") {
    const GridMap map = make_map({"..T..", "..T..", "..T.."});
    SearchScratch scratch;
    std::pmr::monotonic_buffer_resource frame;
    const Cell cases[][2] = {{{0, 0}, {2, 1}},   // blocked goal
                             {{2, 2}, {0, 0}},   // blocked start
                             {{2, 2}, {2, 2}},   // blocked, equal
                             {{-1, 0}, {0, 0}},  // off the map
                             {{0, 0}, {5, 0}},   // off the map
                             {{0, 0}, {4, 2}}};  // walled off
    for (const auto& query : cases) {
      CAPTURE(query[0]);  // start
      CAPTURE(query[1]);  // goal
      const PathResult result = find_path(map, query[0], query[1], scratch, &frame);
      CHECK_FALSE(result.found);
      CHECK(result.cells.empty());
      CHECK(std::isinf(dijkstra_distance(map, query[0], query[1])));
    }
  }

  TEST_CASE("a path steps around a blocked corner instead of cutting it") {
    const GridMap map = make_map({"..", "T."});
    SearchScratch scratch;
    const PathResult result = find_path(map, {0, 0}, {1, 1}, scratch, nullptr);
    REQUIRE(result.found);
    CHECK(result.length == 2);
    CHECK(result.cells.size() == 3);
    CHECK(dijkstra_distance(map, {0, 0}, {1, 1}) == 2);
    CHECK(validate_path(map, result.cells, {0, 0}, {1, 1}, nullptr));
  }

  TEST_CASE("octile distance and path length match hand-computed values") {
    CHECK(octile_distance({0, 0}, {0, 0}) == 0);
    CHECK(octile_distance({0, 0}, {5, 0}) == 5);
    CHECK(octile_distance({3, 4}, {0, 0}) == doctest::Approx(1 + 3 * std::sqrt(2.0)));
    const std::vector<Cell> path = {{0, 0}, {1, 1}, {2, 1}, {3, 2}};
    CHECK(path_length(path) == doctest::Approx(1 + 2 * std::sqrt(2.0)));
    CHECK(path_length(std::vector<Cell>{{4, 4}}) == 0);
  }

  TEST_CASE("the validator rejects corner cutting, jumps, blocked cells and wrong endpoints") {
    const GridMap map = make_map({"....", ".T..", "...."});
    const std::vector<Cell> good = {{0, 0}, {1, 0}, {2, 0}, {3, 1}, {3, 2}};
    std::string why;
    CHECK_MESSAGE(validate_path(map, good, {0, 0}, {3, 2}, &why), why);

    struct Bad {
      std::vector<Cell> path;
      Cell start;
      Cell goal;
      const char* needle;
    };
    const std::vector<Bad> cases = {
        {{{0, 0}, {1, 1}}, {0, 0}, {1, 1}, "blocked"},
        {{{0, 1}, {1, 2}}, {0, 1}, {1, 2}, "cuts the corner of blocked cell (1, 1)"},
        {{{0, 0}, {2, 0}}, {0, 0}, {2, 0}, "jumps"},
        {{{0, 0}, {0, 0}}, {0, 0}, {0, 0}, "does not move"},
        {{{0, 0}, {1, 0}}, {0, 0}, {2, 0}, "ends at (1, 0) but the goal is (2, 0)"},
        {{{1, 0}, {2, 0}}, {0, 0}, {2, 0}, "starts at (1, 0) but the start is (0, 0)"},
        {{{0, 2}, {0, 3}}, {0, 2}, {0, 3}, "outside the 4x3 map"},
        {{}, {0, 0}, {0, 0}, "empty"},
    };
    for (const Bad& bad : cases) {
      CAPTURE(bad.needle);
      why.clear();
      CHECK_FALSE(validate_path(map, bad.path, bad.start, bad.goal, &why));
      CAPTURE(why);
      CHECK(why.find(bad.needle) != std::string::npos);
      CHECK_FALSE(validate_path(map, bad.path, bad.start, bad.goal, nullptr));
    }
  }

  TEST_CASE("loading a missing map or scenario file throws MapError naming the file") {
    const std::string missing = data_file("no_such_map.map");
    const auto map_error = map_error_from([&] { GridMap::load(missing); });
    REQUIRE(map_error.has_value());
    CHECK(std::string(map_error->what()).find(missing + ": cannot open") == 0);
    CHECK(map_error->line() == 0);
    const auto scen_error = map_error_from([&] { load_scenarios(missing + ".scen"); });
    REQUIRE(scen_error.has_value());
    CHECK(std::string(scen_error->what()).find("cannot open") != std::string::npos);
  }

  TEST_CASE("a map with a bad header throws MapError naming the line and the problem") {
    const BadFiles bad(Kind::map);
    bad("", 1, "empty file");
    bad("typo octile\nheight 1\nwidth 1\nmap\n.\n", 1, "expected header line");
    bad("type hex\nheight 1\nwidth 1\nmap\n.\n", 1, "unsupported map type");
    bad("type octile\nheight x\nwidth 1\nmap\n.\n", 2, "garbled header line");
    bad("type octile\nheight 0\nwidth 1\nmap\n.\n", 2, "garbled header line");
    bad("type octile\nheight 1\nheight 1\nmap\n.\n", 3, "duplicate 'height'");
    bad("type octile\nheight 1\nmap\n.\n", 3, "no 'width");
    bad("type octile\nheight 1\nwidth 1\nmop\n.\n", 4, "unexpected header line");
    bad("type octile\nheight 1\nwidth 1\n", 4, "before the 'map' header line");
  }

  TEST_CASE("a map with a wrong row length, row count or character throws MapError") {
    const BadFiles bad(Kind::map);
    const std::string header = "type octile\nheight 3\nwidth 4\nmap\n";
    bad(header + "....\n...\n....\n", 6, "row y=1 has 3 characters, expected");
    bad(header + "....\n.....\n....\n", 6, "row y=1 has 5 characters");
    bad(header + "....\n....\n", 7, "ends after 2 map rows, expected 3");
    bad(header + "....\n....\n....\n....\n", 8, "unexpected text after");
    bad(header + "....\n..x.\n....\n", 6, "unknown terrain character 'x' at x=2");
    bad(header + "....\n..\t.\n....\n", 6, "byte 0x09");
    // Accepted: CRLF line ends, S/W terrain (blocked) and trailing empty lines.
    const std::string ok = bad.dir().write("ok.map",
                                           "type octile\r\nwidth 4\r\nheight 3\r\nmap\r\n"
                                           "..G.\r\n@OTS\r\nW...\r\n\r\n");
    const GridMap map = GridMap::load(ok);
    CHECK(map.passable_count() == 7);
    CHECK(map.passable(2, 0));
    CHECK_FALSE(map.passable(3, 1));
    CHECK(map.terrain({0, 2}) == 'W');
  }

  TEST_CASE("a scenario file with a missing field or a bad number throws MapError") {
    const BadFiles bad(Kind::scen);
    const std::string version = "version 1\n";
    const std::string good = "0\tx.map\t4\t3\t0\t0\t3\t2\t3.82842712\n";
    bad(version + good + "0\tx.map\t4\t3\t0\t0\t3\t2\n", 3, "expected 9 tab-separated fields");
    bad(version + "0\tx.map\t4\t3\tzero\t0\t3\t2\t1.0\n", 2,
        "field 'start_x' is not an integer: 'zero'");
    bad(version + "0\tx.map\t4\t3\t0\t0\t3\t2\tabc\n", 2, "field 'optimal_length'");
    bad(version + "0\tx.map\t4\t3\t0\t0\t4\t2\t1.0\n", 2,
        "goal (4, 2) lies outside the declared 4x3 map");
    bad(good, 1, "expected first line 'version <number>'");
    bad("", 1, "empty file");
    const auto scenarios = load_scenarios(bad.dir().write("ok.map.scen", version + good + "\n"));
    REQUIRE(scenarios.size() == 1);
    CHECK(scenarios[0].goal == Cell{3, 2});
    CHECK(scenarios[0].optimal_length == doctest::Approx(3.82842712));
  }

  TEST_CASE("one search scratch serves many searches on different maps") {
    const GridMap small = make_map({"...", ".T.", "..."});
    const GridMap arena = GridMap::load(data_file("arena.map"));
    SearchScratch scratch;
    std::pmr::monotonic_buffer_resource frame;
    for (int round = 0; round < 3; ++round) {
      const PathResult a = find_path(small, {0, 0}, {2, 2}, scratch, &frame);
      CHECK(a.found);
      CHECK(a.length == doctest::Approx(4));
      const PathResult b = find_path(arena, {3, 3}, {45, 45}, scratch, &frame);
      CHECK(b.found);
      CHECK(b.length == doctest::Approx(dijkstra_distance(arena, {3, 3}, {45, 45})));
      CHECK(scratch.capacity() == arena.cell_count());
    }
  }

  TEST_CASE("find_path allocates only from the memory resource it is given") {
    const GridMap map = GridMap::load(data_file("arena.map"));
    SearchScratch scratch(map);
    std::vector<std::byte> buffer(1 << 16);  // a fixed arena; more would throw
    std::pmr::monotonic_buffer_resource arena(buffer.data(), buffer.size(),
                                              std::pmr::null_memory_resource());
    struct NullDefault {  // any use of the default resource throws while this lives
      std::pmr::memory_resource* previous =
          std::pmr::set_default_resource(std::pmr::null_memory_resource());
      ~NullDefault() { std::pmr::set_default_resource(previous); }
    };
    std::optional<PathResult> result;
    {
      const NullDefault guard;
      result.emplace(find_path(map, {3, 3}, {45, 45}, scratch, &arena));
    }
    REQUIRE(result->found);
    CHECK(result->cells.get_allocator().resource() == &arena);
    const auto* cells = reinterpret_cast<const std::byte*>(result->cells.data());
    CHECK(cells >= buffer.data());
    CHECK(cells < buffer.data() + buffer.size());
  }
}
