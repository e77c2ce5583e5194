#pragma once
/// \file
/// Grid pathfinding for the game-frame sample: A* over a GridMap with the octile heuristic, a
/// Dijkstra reference and a path validator.
///
/// Movement rules (those of the Moving AI Lab benchmarks): 8-connected; a straight step costs 1,
/// a diagonal step sqrt(2); a diagonal step is allowed only when both orthogonal neighbours it
/// passes between are passable (no corner cutting). Lengths are in cell widths.
///
/// Plain C++20; no dependency on fiberjob.

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <span>
#include <string>
#include <vector>

#include "grid_map.hpp"

namespace game {

/// The octile distance between `a` and `b`: the length of a shortest 8-connected path on an
/// empty grid, `max(dx, dy) + (sqrt(2) - 1) * min(dx, dy)`. A consistent A* heuristic for the
/// movement rules above. Thread-safety: pure function.
double octile_distance(Cell a, Cell b) noexcept;

namespace detail {
class AStarSearch;
}  // namespace detail

/// Per-thread, reusable per-cell search state for find_path: g-score, parent, an open/closed
/// generation stamp and the cell's slot in the open list (20 bytes a cell: 1.3 MB for
/// den520d's 256 x 257 cells). It is sized to a map once (the only allocation); each search then
/// resets it in O(1) by advancing a generation counter (a full clear happens once every ~2^31
/// searches, when the counter wraps).
///
/// One scratch may serve several maps; it grows to the largest. Thread-safety: none — use one
/// scratch per thread (or per concurrently running search).
class SearchScratch {
 public:
  /// An empty scratch; the first find_path sizes it.
  SearchScratch() = default;
  /// A scratch already sized for `map`, so that no search on it allocates here.
  explicit SearchScratch(const GridMap& map) { prepare(map); }

  /// Grows the per-cell arrays to map.cell_count() if they are smaller (allocates then only).
  /// Errors: std::bad_alloc.
  void prepare(const GridMap& map);

  /// Number of cells the scratch currently covers.
  std::size_t capacity() const noexcept { return nodes_.size(); }

 private:
  friend class detail::AStarSearch;

  /// Search state of one cell; valid for the current search only when `stamp >= generation_`.
  struct Node {
    std::int64_t g;       // fixed-point cost from the start (see pathfinding.cpp)
    std::int32_t parent;  // index of the predecessor cell, -1 at the start
    std::uint32_t stamp;  // generation_ = open, generation_ + 1 = closed, older = unseen
  };

  /// Starts a new search: returns the generation whose stamps mark "open" (+1 "closed").
  std::uint32_t begin_search() noexcept;

  std::vector<Node> nodes_;
  std::vector<std::int32_t> heap_positions_;  // slot in the open list while open (hot, compact)
  std::uint32_t generation_ = 0;
};

/// The outcome of find_path.
struct PathResult {
  bool found = false;            ///< True when a path from start to goal exists.
  double length = 0;             ///< Path length in cell widths (0 when not found).
  std::pmr::vector<Cell> cells;  ///< Start to goal inclusive; empty when not found.
  std::uint32_t expanded = 0;    ///< Number of cells the search expanded (closed): a cost figure.
};

/// Finds a shortest path from `start` to `goal` with A* (octile heuristic; among equal f, the
/// larger g first; stops when the goal is expanded). Movement rules: see the file comment.
///
/// * start == goal on a passable cell: a one-cell path of length 0.
/// * start or goal blocked or outside the map, or no connection: found == false.
///
/// Memory: the open list and result.cells are allocated from `memory` (nullptr means
/// std::pmr::get_default_resource()); nothing is deallocated individually, so a monotonic
/// per-frame arena is fine. The open list is a binary heap in a std::pmr::vector holding each
/// open cell once (decrease-key, no stale duplicates); it starts at 256 entries of 16 bytes and
/// doubles, so a search takes about twice its peak open-list size from the arena (at most
/// ~32 KB for 1000 random den520d queries). The only other allocation is
/// `scratch.prepare(map)` when the scratch is smaller than the map.
/// Thread-safety: concurrent calls are safe when each uses its own scratch and `memory` may be
/// used from the calling thread (e.g. a per-worker arena or a thread-safe resource); the map is
/// only read.
/// Errors: whatever `memory` throws (std::bad_alloc); the scratch stays usable.
PathResult find_path(const GridMap& map, Cell start, Cell goal, SearchScratch& scratch,
                     std::pmr::memory_resource* memory);

/// Shortest-path length from `start` to `goal` by plain Dijkstra (std::priority_queue, double
/// costs), the independent reference for testing find_path. Returns +infinity when either
/// endpoint is blocked or outside the map or the goal is unreachable; 0 when start == goal is
/// passable. Allocates per call. Thread-safety: pure function of its arguments.
double dijkstra_distance(const GridMap& map, Cell start, Cell goal);

/// Checks that `path` is a legal path on `map` from `start` to `goal`: non-empty, starts at
/// `start`, ends at `goal`, every cell in bounds and passable, every step a move to one of the 8
/// neighbours (no repeats, no jumps) and no diagonal step cuts a corner. Returns true if so;
/// otherwise returns false and, when `why` is not null, sets `*why` to one sentence naming the
/// first problem found. Thread-safety: pure function (writes only `*why`).
bool validate_path(const GridMap& map, std::span<const Cell> path, Cell start, Cell goal,
                   std::string* why);

/// Length of `path` in cell widths: 1 per straight step, sqrt(2) per diagonal step, computed as
/// straight_count + diagonal_count * sqrt(2). Steps are assumed to be 8-neighbour moves (check
/// with validate_path); a longer step counts as its octile distance. 0 for fewer than two
/// cells. Thread-safety: pure function.
double path_length(std::span<const Cell> path) noexcept;

}  // namespace game
