#pragma once
/// \file
/// Grid maps and scenario files of the Moving AI Lab pathfinding benchmarks (movingai.com
/// "octile" `.map` and `.scen` formats), loaded for the game-frame sample.
///
/// Plain C++20; no dependency on fiberjob.

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <vector>

namespace game {

/// A grid position: `x` is the column (0 = left), `y` the row (0 = top line of the map).
struct Cell {
  int x = 0;  ///< Column.
  int y = 0;  ///< Row.

  /// Two cells are equal when both coordinates are.
  friend bool operator==(const Cell&, const Cell&) = default;
};

/// Writes `(x, y)`; used in error messages and test output.
std::ostream& operator<<(std::ostream& out, Cell cell);

/// Returns `(x, y)` as a string.
std::string to_string(Cell cell);

/// Thrown for any malformed or unreadable map or scenario file. `what()` reads
/// `<source>:<line>: <problem>` (or `<source>: <problem>` when no line applies), e.g.
/// `maps/a.map:7: map row y=2 has 48 characters, expected width 49`.
class MapError : public std::runtime_error {
 public:
  /// `line` is 1-based; 0 means the problem concerns the whole file (e.g. it cannot be opened).
  MapError(const std::string& source, int line, const std::string& problem);

  /// The file name (or the name given to a stream parse) the error refers to.
  const std::string& source() const noexcept { return source_; }
  /// The 1-based line number, or 0 when the error concerns the whole file.
  int line() const noexcept { return line_; }

 private:
  std::string source_;
  int line_ = 0;
};

/// An immutable 2-D grid of terrain characters with passability.
///
/// Passability: only `.` and `G` (ground) are passable; `@` and `O` (out of bounds) and `T`
/// (trees) are blocked. samples/data/README.md calls `S` (swamp) and `W` (water) "special"
/// without saying how to move on them, so they are treated as blocked too: ground-only
/// movement reproduces the published optimal lengths (the bundled maps contain no S or W).
/// Any other character is a format error.
///
/// Cells are numbered row-major: `index(c) = c.y * width() + c.x`, at most 2^30 cells.
/// Thread-safety: after construction every member is const and may be called concurrently.
class GridMap {
 public:
  /// Largest accepted width or height (32768), so that every cell index fits `std::int32_t`.
  static constexpr int max_dimension = 1 << 15;

  /// An empty 0 x 0 map (every cell is outside, so nothing is passable).
  GridMap() = default;

  /// Reads a movingai `.map` file: `type octile`, `height H`, `width W` (either order), `map`,
  /// then H rows of exactly W characters. A trailing `\r` on a line is ignored, as are empty
  /// lines after the last row.
  /// Errors: throws MapError naming the file, line and problem if the file cannot be read, a
  /// header line is missing or garbled, a dimension is not an integer in [1, max_dimension],
  /// the row count or a row length is wrong, or a row holds an unknown character.
  static GridMap load(const std::string& path);

  /// As load(), reading from `in`; `source_name` is used in error messages.
  static GridMap parse(std::istream& in, const std::string& source_name);

  /// Width in cells (number of columns).
  int width() const noexcept { return width_; }
  /// Height in cells (number of rows).
  int height() const noexcept { return height_; }
  /// width() * height().
  std::size_t cell_count() const noexcept { return passable_.size(); }

  /// True when (x, y) lies on the map.
  bool in_bounds(int x, int y) const noexcept {
    return static_cast<unsigned>(x) < static_cast<unsigned>(width_) &&
           static_cast<unsigned>(y) < static_cast<unsigned>(height_);
  }
  /// True when `c` lies on the map.
  bool in_bounds(Cell c) const noexcept { return in_bounds(c.x, c.y); }

  /// True when (x, y) is on the map and passable; false outside the map. O(1).
  bool passable(int x, int y) const noexcept {
    return in_bounds(x, y) && passable_[static_cast<std::size_t>(y * width_ + x)] != 0;
  }
  /// True when `c` is on the map and passable; false outside the map. O(1).
  bool passable(Cell c) const noexcept { return passable(c.x, c.y); }

  /// Number of passable cells (counted once at load).
  std::size_t passable_count() const noexcept { return passable_count_; }

  /// The terrain character at `c` (e.g. '.', 'T', '@'). Precondition: in_bounds(c).
  char terrain(Cell c) const noexcept {
    return terrain_[static_cast<std::size_t>(c.y * width_ + c.x)];
  }

  /// Row-major index of `c`. Precondition: in_bounds(c).
  std::int32_t index(Cell c) const noexcept { return c.y * width_ + c.x; }
  /// The cell with row-major index `i`. Precondition: 0 <= i < cell_count().
  Cell cell(std::int32_t i) const noexcept { return Cell{i % width_, i / width_}; }

 private:
  int width_ = 0;
  int height_ = 0;
  std::size_t passable_count_ = 0;
  std::string terrain_;                 // width_ * height_ characters, row-major
  std::vector<std::uint8_t> passable_;  // 1 = passable, row-major

  /// Fills passable_ and passable_count_ from terrain_.
  void classify_cells();
};

/// One benchmark query of a `.scen` file.
struct Scenario {
  int bucket = 0;             ///< Difficulty bucket (roughly optimal_length / 4).
  std::string map;            ///< Map file name as written in the scenario file.
  int width = 0;              ///< Declared map width.
  int height = 0;             ///< Declared map height.
  Cell start;                 ///< Start cell.
  Cell goal;                  ///< Goal cell.
  double optimal_length = 0;  ///< Published optimal path length (straight 1, diagonal sqrt 2).
};

/// Reads a movingai `.scen` file: a first line `version <number>`, then one query per line with
/// nine tab-separated fields `bucket map width height start_x start_y goal_x goal_y
/// optimal_length`. Empty lines are skipped; a trailing `\r` is ignored.
/// Errors: throws MapError naming the file, line and problem if the file cannot be read, the
/// version line is missing, a line does not have nine fields, a number does not parse, a
/// dimension is not positive, a start/goal lies outside the declared size, or a length is
/// negative or not finite.
std::vector<Scenario> load_scenarios(const std::string& path);

/// As load_scenarios(), reading from `in`; `source_name` is used in error messages.
std::vector<Scenario> parse_scenarios(std::istream& in, const std::string& source_name);

}  // namespace game
