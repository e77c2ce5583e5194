// job_value: a job that returns a value (an A*-style path search), spawned and awaited with a
// JobHandle<T> — no hand-written shared state.
//
//   agent_ai ──path.spawn(ctx, find_path(grid, from, to))──▶ job: find_path (a Task<Path>)
//      │  (other work meanwhile)                                   │
//      └── co_await path ◀─── the path, moved out of the handle ◀──┘
//   plain job ──handle.get(system)──▶ the same from plain code (the fiber waits)
//
// The handle holds the job's counter and a slot for its value; it lives in the caller's
// frame, and its destructor joins a job that is still running.

#include <fmt/core.h>
#include <fiberjob/fiberjob.hpp>

#include <array>
#include <cstdlib>
#include <queue>
#include <string_view>
#include <vector>

namespace {

constexpr int kWidth = 8;
constexpr std::array<std::string_view, 5> kGrid = {"........", ".######.", ".#....#.", ".#.##.#.",
                                                   "...#...."};
using Path = std::vector<int>;  // cell indices y * kWidth + x, start to goal

// Breadth-first search on the grid (unit costs: A* with a zero heuristic finds the same).
fiberjob::Task<Path> find_path(int from, int to) {
  const int cells = static_cast<int>(kGrid.size()) * kWidth;
  std::vector<int> parent(static_cast<std::size_t>(cells), -1);
  std::queue<int> open;
  open.push(from);
  parent[static_cast<std::size_t>(from)] = from;
  while (!open.empty()) {
    const int cell = open.front();
    open.pop();
    if (cell == to) break;
    const int x = cell % kWidth;
    const int y = cell / kWidth;
    const int dx[] = {1, -1, 0, 0};
    const int dy[] = {0, 0, 1, -1};
    for (int d = 0; d < 4; ++d) {
      const int nx = x + dx[d];
      const int ny = y + dy[d];
      if (nx < 0 || ny < 0 || nx >= kWidth || ny >= static_cast<int>(kGrid.size())) continue;
      const int next = ny * kWidth + nx;
      if (kGrid[static_cast<std::size_t>(ny)][static_cast<std::size_t>(nx)] == '#' ||
          parent[static_cast<std::size_t>(next)] != -1) {
        continue;
      }
      parent[static_cast<std::size_t>(next)] = cell;
      open.push(next);
    }
  }
  Path path;
  if (parent[static_cast<std::size_t>(to)] == -1) co_return path;  // unreachable
  for (int cell = to; cell != from; cell = parent[static_cast<std::size_t>(cell)]) {
    path.insert(path.begin(), cell);
  }
  path.insert(path.begin(), from);
  co_return path;
}

}  // namespace

int main() {
  fiberjob::JobSystem js;
  std::size_t awaited_length = 0;
  std::size_t got_length = 0;
  fiberjob::Counter done;
  // 1. A coroutine job spawns the search and awaits its value.
  js.run(done, [&](fiberjob::Context& ctx) -> fiberjob::Task<> {
    fiberjob::JobHandle<Path> path;
    path.spawn(ctx, find_path(0, 4 * kWidth + 7));
    const Path route = co_await path;
    awaited_length = route.size();
    fmt::print("coroutine job: path of {} cells from (0,0) to (7,4)\n", route.size());
  });
  // 2. A plain job does the same with get(): its fiber waits.
  js.run(done, [&](fiberjob::Context& ctx) {
    fiberjob::JobHandle<Path> path;
    path.spawn(ctx, find_path(2 * kWidth + 2, 4 * kWidth + 7));
    got_length = path.get(ctx.system()).size();
    fmt::print("plain job: path of {} cells from (2,2) to (7,4)\n", got_length);
  });
  js.wait(done);
  const bool ok = awaited_length == 12 && got_length == 8;
  fmt::print("{}\n", ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
