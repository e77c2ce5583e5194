// The serial baseline of the game frame (--serial): the work of World::run_frame on the calling
// thread, with no job, no fiber switch and no counter.
//
//   frame (main thread):  begin_frame ─ for each agent in id order: AI step; asked for a path?
//     run its A* search now (the parallel frame spawns it as a job) ─ spatial grid ─ movement of
//     all agents in one batch ─ swap positions ─ render prep ─ submit the snapshot to the
//     graphics context (this is the main thread)
//
// Where the parallel frame waits (the frame gate, the path counter, ai_done, the movement
// batches, render prep), everything waited for has already run here, so each wait is a no-op
// and is left out. A search asked for in frame f is read by its agent in frame f+1 in both
// versions, so the snapshots (and their checksums) are the same.

#include "world.hpp"

namespace game {

void World::run_frame_serial() {
  memory_.begin_frame();
  for (std::uint32_t id = 0; id < agents_.size(); ++id) {
    // The caller is no worker: scratch 0 (sized for one worker) and the shared frame arena.
    if (const std::optional<PathRequest> request = ai_step(id)) find_agent_path(0, id, *request);
  }
  build_grid();
  move_agents(0, agents_.size());
  positions_.swap(next_positions_);
  render_prep();
  graphics_.submit({sprites_, agents_.size()});
}

}  // namespace game
