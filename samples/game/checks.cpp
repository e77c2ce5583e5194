// --check of the game-frame sample.

#include "checks.hpp"

#include <fmt/core.h>
#include <fiberjob/fiberjob.hpp>

#include <cmath>
#include <memory_resource>

#include "pathfinding.hpp"

namespace game {

bool check_paths(const GridMap& map, const std::vector<PathRecord>& records) {
  std::size_t failures = 0;
  for (const PathRecord& record : records) {
    const double reference = dijkstra_distance(map, record.start, record.goal);
    std::string why;
    bool ok = true;
    if (record.length < 0) {
      ok = std::isinf(reference);
      why = "A* found no path but Dijkstra did";
    } else if (!validate_path(map, record.cells, record.start, record.goal, &why)) {
      ok = false;
    } else if (std::abs(record.length - reference) > 1e-6) {
      ok = false;
      why = fmt::format("length {:.6f} but Dijkstra finds {:.6f}", record.length, reference);
    }
    if (!ok && ++failures <= 10) {
      fmt::print("check: path {} -> {} is wrong: {}\n", to_string(record.start),
                 to_string(record.goal), why);
    }
  }
  fmt::print("check: {} paths used by the AI verified against Dijkstra: {}\n", records.size(),
             failures == 0 ? "all valid and optimal" : fmt::format("{} FAILED", failures));
  return failures == 0 && !records.empty();
}

bool check_scenarios(fiberjob::JobSystem& js, const GridMap& map, const std::string& scen_path) {
  const std::vector<Scenario> scenarios = load_scenarios(scen_path);
  std::vector<double> lengths(scenarios.size(), -1.0);
  struct Query {
    const GridMap* map;
    const Scenario* scenario;
    double* length;
    void operator()() const {
      SearchScratch scratch(*map);
      const PathResult result = find_path(*map, scenario->start, scenario->goal, scratch,
                                          std::pmr::new_delete_resource());
      *length = result.found ? result.length : -1.0;
    }
  };
  std::vector<Query> queries;
  for (std::size_t i = 0; i < scenarios.size(); ++i) {
    queries.push_back(Query{&map, &scenarios[i], &lengths[i]});
  }
  fiberjob::Counter done;
  js.run(done, std::span<Query>(queries));  // the 130 queries as jobs
  js.wait(done);
  std::size_t failures = 0;
  for (std::size_t i = 0; i < scenarios.size(); ++i) {
    if (std::abs(lengths[i] - scenarios[i].optimal_length) > 1e-4) {
      if (++failures <= 10) {
        fmt::print("check: scenario {} ({} -> {}): {:.6f}, published {:.6f}\n", i,
                   to_string(scenarios[i].start), to_string(scenarios[i].goal), lengths[i],
                   scenarios[i].optimal_length);
      }
    }
  }
  fmt::print("check: {} scenarios of {} solved as jobs: {}\n", scenarios.size(), scen_path,
             failures == 0 ? "all match the published optimal lengths (1e-4)"
                           : fmt::format("{} FAILED", failures));
  return failures == 0 && !scenarios.empty();
}

}  // namespace game
