#pragma once
// --check of the game-frame sample: paths against Dijkstra, scenarios against published
// lengths.

#include <fiberjob/job_system.hpp>

#include <string>
#include <vector>

#include "grid_map.hpp"
#include "world.hpp"

namespace game {

/// Every recorded path is valid (passable, connected, no corner cutting) and as long as a
/// single-threaded Dijkstra finds (1e-6); a failed search must have no Dijkstra path either.
/// Prints a line per failure (at most 10) and a summary. Returns true when all pass.
bool check_paths(const GridMap& map, const std::vector<PathRecord>& records);

/// Solves every query of `scen_path` as a job and compares with the published optimal length
/// (1e-4). Returns true when all match.
bool check_scenarios(fiberjob::JobSystem& js, const GridMap& map, const std::string& scen_path);

}  // namespace game
