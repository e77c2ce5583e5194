#include "pathfinding.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <numbers>
#include <queue>
#include <utility>

namespace game {

namespace {

// A* works in fixed point: a straight step costs 2^32, a diagonal step round(sqrt(2) * 2^32).
// Every g and h is then an exact integer a * straight + b * diagonal, so f-ties are exact ties
// (tie-breaking on g works) and the heuristic is exactly consistent. The rounding of sqrt(2)
// (< 1.2e-10 per diagonal step) is far below the smallest gap between two distinct lengths
// a + b * sqrt(2) of paths shorter than 10^6 steps, so A* ranks paths exactly as real
// arithmetic would. Maximum g: 2^30 cells * 1.5 * 2^32 < 2^63.
constexpr std::int64_t straight_cost = std::int64_t{1} << 32;
constexpr std::int64_t diagonal_cost =
    static_cast<std::int64_t>(std::numbers::sqrt2 * static_cast<double>(straight_cost) + 0.5);
static_assert(diagonal_cost == 6074001000);

/// Fixed-point octile distance between two cells.
std::int64_t octile_fixed(int x0, int y0, int x1, int y1) noexcept {
  const std::int64_t dx = std::abs(x0 - x1);
  const std::int64_t dy = std::abs(y0 - y1);
  const std::int64_t lo = std::min(dx, dy);
  return (std::max(dx, dy) - lo) * straight_cost + lo * diagonal_cost;
}

/// True when the diagonal step from `from` by (dx, dy) does not cut a corner, i.e. both
/// orthogonal cells it passes between are passable. Straight steps always pass.
bool corner_clear(const GridMap& map, Cell from, int dx, int dy) noexcept {
  return dx == 0 || dy == 0 ||
         (map.passable(from.x + dx, from.y) && map.passable(from.x, from.y + dy));
}

}  // namespace

double octile_distance(Cell a, Cell b) noexcept {
  const std::int64_t dx = std::abs(std::int64_t{a.x} - b.x);  // 64-bit: no overflow for any ints
  const std::int64_t dy = std::abs(std::int64_t{a.y} - b.y);
  const std::int64_t lo = std::min(dx, dy);
  return static_cast<double>(std::max(dx, dy) - lo) + static_cast<double>(lo) * std::numbers::sqrt2;
}

void SearchScratch::prepare(const GridMap& map) {
  if (nodes_.size() < map.cell_count()) {
    nodes_.resize(map.cell_count(), Node{0, -1, 0});
    heap_positions_.resize(map.cell_count(), 0);
  }
}

std::uint32_t SearchScratch::begin_search() noexcept {
  if (generation_ > std::numeric_limits<std::uint32_t>::max() - 4) {
    for (Node& node : nodes_) node.stamp = 0;  // wrap: forget every old stamp
    generation_ = 0;
  }
  generation_ += 2;  // open = generation_, closed = generation_ + 1; unseen stamps are smaller
  return generation_;
}

namespace detail {

/// One A* run: the open list, the goal and the scratch. Lives for one find_path call.
class AStarSearch {
 public:
  AStarSearch(const GridMap& map, SearchScratch& scratch, Cell goal,
              std::pmr::memory_resource* memory)
      : map_(map),
        nodes_(scratch.nodes_.data()),
        heap_positions_(scratch.heap_positions_.data()),
        goal_(goal),
        goal_index_(map.index(goal)),
        open_stamp_(scratch.begin_search()),
        closed_stamp_(open_stamp_ + 1),
        open_(memory) {
    open_.reserve(initial_open_capacity);
  }

  /// Searches from `start`; true when the goal was reached.
  bool run(Cell start) {
    relax(start, map_.index(start), 0, -1);
    while (!open_.empty()) {
      const Entry top = pop();
      SearchScratch::Node& node = nodes_[top.index];
      node.stamp = closed_stamp_;  // each open cell is in the heap once: no stale entries
      ++expanded_;
      if (top.index == goal_index_) return true;
      expand(top.index, node.g);
    }
    return false;
  }

  /// Writes the path (start to goal) into `result`; call after run() returned true.
  void build_path(PathResult& result) const {
    std::size_t count = 0;
    for (std::int32_t i = goal_index_; i >= 0; i = nodes_[i].parent) ++count;
    result.cells.resize(count);
    std::size_t slot = count;
    for (std::int32_t i = goal_index_; i >= 0; i = nodes_[i].parent) {
      result.cells[--slot] = map_.cell(i);
    }
    result.found = true;
    result.length = path_length(result.cells);
  }

  std::uint32_t expanded() const noexcept { return expanded_; }

 private:
  static constexpr std::size_t initial_open_capacity = 256;

  /// An open-list entry: ordered by f, then by smaller h (= larger g for equal f).
  struct Entry {
    std::int64_t f;
    std::uint32_t h_key;  // h >> 17 fits 32 bits: h < 2^15 * 1.5 * 2^32
    std::int32_t index;
  };

  static bool before(const Entry& a, const Entry& b) noexcept {
    return a.f < b.f || (a.f == b.f && a.h_key < b.h_key);
  }

  /// Expands the cell with index `index` and cost `g`: relaxes its legal neighbours.
  void expand(std::int32_t index, std::int64_t g) {
    const Cell c = map_.cell(index);
    const std::int32_t w = map_.width();
    const bool n = map_.passable(c.x, c.y - 1);
    const bool s = map_.passable(c.x, c.y + 1);
    const bool west = map_.passable(c.x - 1, c.y);
    const bool e = map_.passable(c.x + 1, c.y);
    const std::int64_t gs = g + straight_cost;
    const std::int64_t gd = g + diagonal_cost;
    if (n) relax({c.x, c.y - 1}, index - w, gs, index);
    if (s) relax({c.x, c.y + 1}, index + w, gs, index);
    if (west) relax({c.x - 1, c.y}, index - 1, gs, index);
    if (e) relax({c.x + 1, c.y}, index + 1, gs, index);
    if (n && west && map_.passable(c.x - 1, c.y - 1))
      relax({c.x - 1, c.y - 1}, index - w - 1, gd, index);
    if (n && e && map_.passable(c.x + 1, c.y - 1))
      relax({c.x + 1, c.y - 1}, index - w + 1, gd, index);
    if (s && west && map_.passable(c.x - 1, c.y + 1))
      relax({c.x - 1, c.y + 1}, index + w - 1, gd, index);
    if (s && e && map_.passable(c.x + 1, c.y + 1))
      relax({c.x + 1, c.y + 1}, index + w + 1, gd, index);
  }

  /// Offers cost `g` via `parent` to cell `c` (index `index`): opens it, or lowers its key in
  /// the heap when `g` improves on its current cost; ignores closed cells.
  void relax(Cell c, std::int32_t index, std::int64_t g, std::int32_t parent) {
    SearchScratch::Node& node = nodes_[index];
    const bool open = node.stamp == open_stamp_;
    if (node.stamp == closed_stamp_ || (open && node.g <= g)) return;
    node.g = g;
    node.parent = parent;
    const std::int64_t h = octile_fixed(c.x, c.y, goal_.x, goal_.y);
    const Entry entry{g + h, static_cast<std::uint32_t>(h >> 17), index};
    if (open) {
      sift_up(static_cast<std::size_t>(heap_positions_[index]), entry);  // decrease-key
    } else {
      node.stamp = open_stamp_;
      open_.push_back(entry);
      sift_up(open_.size() - 1, entry);
    }
  }

  /// Stores `entry` in heap slot `slot` and records the slot in its cell.
  void place(std::size_t slot, const Entry& entry) {
    open_[slot] = entry;
    heap_positions_[entry.index] = static_cast<std::int32_t>(slot);
  }

  /// Moves the hole at `hole` toward the root until `entry` fits there, and stores it.
  void sift_up(std::size_t hole, const Entry& entry) {
    while (hole > 0) {
      const std::size_t parent = (hole - 1) / 2;
      if (!before(entry, open_[parent])) break;
      place(hole, open_[parent]);
      hole = parent;
    }
    place(hole, entry);
  }

  /// Removes and returns the first entry. Bottom-up: the hole walks down to a leaf along the
  /// better children (one comparison per level), then the former last entry sifts up from
  /// there (usually a step or two, as it is a late entry).
  Entry pop() {
    const Entry top = open_.front();
    const Entry last = open_.back();
    open_.pop_back();
    const std::size_t size = open_.size();
    if (size == 0) return top;
    std::size_t hole = 0;
    std::size_t child = 1;
    for (; child + 1 < size; child = 2 * hole + 1) {
      child += before(open_[child + 1], open_[child]) ? 1u : 0u;
      place(hole, open_[child]);
      hole = child;
    }
    if (child < size) {  // a last node with a single child
      place(hole, open_[child]);
      hole = child;
    }
    sift_up(hole, last);
    return top;
  }

  const GridMap& map_;
  SearchScratch::Node* nodes_;
  std::int32_t* heap_positions_;
  Cell goal_;
  std::int32_t goal_index_;
  std::uint32_t open_stamp_;
  std::uint32_t closed_stamp_;
  std::uint32_t expanded_ = 0;
  std::pmr::vector<Entry> open_;
};

}  // namespace detail

PathResult find_path(const GridMap& map, Cell start, Cell goal, SearchScratch& scratch,
                     std::pmr::memory_resource* memory) {
  if (memory == nullptr) memory = std::pmr::get_default_resource();
  PathResult result{false, 0, std::pmr::vector<Cell>(memory), 0};
  if (!map.passable(start) || !map.passable(goal)) return result;
  if (start == goal) {
    result.found = true;
    result.cells.push_back(start);
    return result;
  }
  scratch.prepare(map);
  detail::AStarSearch search(map, scratch, goal, memory);
  if (search.run(start)) search.build_path(result);
  result.expanded = search.expanded();
  return result;
}

double dijkstra_distance(const GridMap& map, Cell start, Cell goal) {
  constexpr double infinity = std::numeric_limits<double>::infinity();
  if (!map.passable(start) || !map.passable(goal)) return infinity;
  using Item = std::pair<double, std::int32_t>;
  std::priority_queue<Item, std::vector<Item>, std::greater<>> queue;
  std::vector<double> distance(map.cell_count(), infinity);
  distance[static_cast<std::size_t>(map.index(start))] = 0;
  queue.emplace(0.0, map.index(start));
  while (!queue.empty()) {
    const auto [d, index] = queue.top();
    queue.pop();
    if (d > distance[static_cast<std::size_t>(index)]) continue;
    const Cell c = map.cell(index);
    if (c == goal) return d;
    for (int dy = -1; dy <= 1; ++dy) {
      for (int dx = -1; dx <= 1; ++dx) {
        const Cell next{c.x + dx, c.y + dy};
        if ((dx == 0 && dy == 0) || !map.passable(next) || !corner_clear(map, c, dx, dy)) continue;
        const double nd = d + (dx != 0 && dy != 0 ? std::numbers::sqrt2 : 1.0);
        auto& best = distance[static_cast<std::size_t>(map.index(next))];
        if (nd < best) {
          best = nd;
          queue.emplace(nd, map.index(next));
        }
      }
    }
  }
  return infinity;
}

namespace {

/// Sets *why (if not null) and returns false.
bool reject(std::string* why, std::string sentence) {
  if (why != nullptr) *why = std::move(sentence);
  return false;
}

/// Checks cell `i` of a path: in bounds and passable.
bool check_cell(const GridMap& map, std::size_t i, Cell c, std::string* why) {
  const std::string name = "Cell " + std::to_string(i) + " " + to_string(c);
  if (!map.in_bounds(c)) {
    return reject(why, name + " lies outside the " + std::to_string(map.width()) + "x" +
                           std::to_string(map.height()) + " map.");
  }
  if (!map.passable(c)) {
    return reject(why, name + " is blocked (terrain '" + std::string(1, map.terrain(c)) + "').");
  }
  return true;
}

/// Checks step `i` of a path, from `a` to `b` (both passable): an 8-neighbour move that does
/// not cut a corner.
bool check_step(const GridMap& map, std::size_t i, Cell a, Cell b, std::string* why) {
  const int dx = b.x - a.x;
  const int dy = b.y - a.y;
  const std::string name =
      "Step " + std::to_string(i) + " from " + to_string(a) + " to " + to_string(b);
  if (dx == 0 && dy == 0) return reject(why, name + " does not move.");
  if (std::abs(dx) > 1 || std::abs(dy) > 1) {
    return reject(why, name + " jumps: it is not a move to one of the 8 neighbours.");
  }
  if (!corner_clear(map, a, dx, dy)) {
    const Cell corner = map.passable(a.x + dx, a.y) ? Cell{a.x, a.y + dy} : Cell{a.x + dx, a.y};
    return reject(why, "Diagonal s" + name.substr(1) + " cuts the corner of blocked cell " +
                           to_string(corner) + ".");
  }
  return true;
}

}  // namespace

bool validate_path(const GridMap& map, std::span<const Cell> path, Cell start, Cell goal,
                   std::string* why) {
  if (path.empty()) return reject(why, "The path is empty.");
  if (path.front() != start) {
    return reject(why, "The path starts at " + to_string(path.front()) + " but the start is " +
                           to_string(start) + ".");
  }
  if (path.back() != goal) {
    return reject(why, "The path ends at " + to_string(path.back()) + " but the goal is " +
                           to_string(goal) + ".");
  }
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (!check_cell(map, i, path[i], why)) return false;
  }
  for (std::size_t i = 1; i < path.size(); ++i) {
    if (!check_step(map, i - 1, path[i - 1], path[i], why)) return false;
  }
  return true;
}

double path_length(std::span<const Cell> path) noexcept {
  std::int64_t straight = 0;
  std::int64_t diagonal = 0;
  for (std::size_t i = 1; i < path.size(); ++i) {
    const std::int64_t dx = std::abs(std::int64_t{path[i].x} - path[i - 1].x);
    const std::int64_t dy = std::abs(std::int64_t{path[i].y} - path[i - 1].y);
    const std::int64_t lo = std::min(dx, dy);
    straight += std::max(dx, dy) - lo;
    diagonal += lo;
  }
  return static_cast<double>(straight) + static_cast<double>(diagonal) * std::numbers::sqrt2;
}

}  // namespace game
