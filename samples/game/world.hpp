#pragma once
// The simulated world of the game-frame sample: agents on a grid map, each driven by one
// long-lived AI coroutine job; movement and local avoidance as parallel_for batches; a render
// snapshot built after movement.
//
//   frame f (main thread):  begin_frame ── arm gate f+1 ── release gate f ──┐
//     AI coroutines (one per agent, spanning frames):                       ▼
//       co_await gate f → decide: need a path? spawn A* job (path counter) │ follow path
//       → signal ai_done → co_await gate f+1 … next frame: co_await path counter
//     frame job (a plain job: this_fiber::wait suspends it the same way):
//                 wait ai_done → build spatial grid → parallel_for(movement)
//                 → spawn render prep (sets snapshot_ready), wait for it
//     presenter (one long-lived coroutine job): co_await snapshot_ready (an auto-reset Event)
//       → co_await resume_on(main) → submit the snapshot to the graphics context (main
//       thread only) → signal frame_done → co_await resume_on_any → next frame
//   main (an AttachedWorker): js.wait(frame_done), running jobs and the presenter's hop meanwhile
//
// run_frame_serial (world_serial.cpp, --serial) does the same work on the calling thread with
// no jobs: every agent's AI step in id order with its A* search called inline where the AI
// would spawn it, then the grid, movement in one batch and render prep. A search spawned in
// frame f is read by its agent in frame f+1 either way, so both give the same snapshots.

#include <fiberjob/fiberjob.hpp>
#include <fiberjob/frame_allocator.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <stop_token>
#include <vector>

#include "graphics.hpp"
#include "grid_map.hpp"
#include "pathfinding.hpp"

namespace game {

struct Vec2 {
  float x = 0;
  float y = 0;
};

enum class AgentState : std::uint8_t { NeedPath, AwaitPath, Following };

/// One agent. AI fields are touched by its coroutine (one at a time) and its A* job (ordered
/// by the path counter); positions are double-buffered for the movement phase.
struct Agent {
  AgentState state = AgentState::NeedPath;
  Cell goal{};
  Vec2 target{};  ///< where movement steers this frame (a cell centre)
  std::vector<Cell> path;
  std::size_t next_waypoint = 0;
  bool path_found = false;
  double path_length = 0;
  std::uint64_t rng = 0;
  std::uint32_t idle_frames = 0;  ///< frames to wait before the next path request
  fiberjob::Counter path_done;
};

/// What the --check mode verifies afterwards: every path an agent was given.
struct PathRecord {
  Cell start;
  Cell goal;
  double length;
  std::vector<Cell> cells;
};

/// A path search an agent asks for: run find_path from `start` to `goal` for it.
struct PathRequest {
  Cell start;
  Cell goal;
};

struct FrameCounters {
  std::uint64_t paths = 0;          ///< A* searches finished
  std::uint64_t path_failures = 0;  ///< searches with no path
  std::uint64_t ai_replaced = 0;    ///< behaviours replaced (replace_behaviour)
  std::uint64_t ai_cancelled = 0;   ///< old AI coroutines that ended by Cancelled
};

class World {
 public:
  /// `main`: the calling (main) thread, attached to `jobs`, where the frames' snapshots are
  /// submitted to the graphics context; none for the --serial run, which submits them itself.
  World(const GridMap& map, fiberjob::JobSystem& jobs, fiberjob::FrameAllocator& memory,
        std::uint32_t agents, std::uint64_t seed, bool record_paths,
        std::optional<fiberjob::AttachedThread> main);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  /// Starts one AI coroutine job per agent and the presenter; they wait for the first frame.
  /// With `replaceable`, each AI job gets a stop token, so that replace_behaviour can cancel it.
  void start(bool replaceable = false);
  /// Replaces agent `id`'s behaviour before frame `frame` (main thread, between frames, after
  /// start(true)): requests a stop on its AI coroutine — whose wait on the frame gate then
  /// completes with Error(Cancelled), so it unwinds and ends — and starts a new AI coroutine
  /// with a new stop token that takes over from frame `frame`, on the same agent state.
  void replace_behaviour(std::uint32_t id, std::uint32_t frame);
  /// Runs frame `frame` to completion (AI decisions, movement, render prep). Main thread.
  void run_frame(std::uint32_t frame);
  /// Runs the next frame to completion on the calling thread without any job (the --serial
  /// baseline): the same AI steps, A* searches, grid, movement and render prep as run_frame, in
  /// a fixed order, with the same results. Use it instead of start/run_frame/stop, never mixed.
  /// Frame memory comes from the allocator's shared arena (the caller is not a worker).
  void run_frame_serial();
  /// Releases the AI coroutines and the presenter one last time so they return, and waits for
  /// them.
  void stop(std::uint32_t next_frame);

  [[nodiscard]] FrameCounters counters() const;
  [[nodiscard]] std::vector<PathRecord> take_path_records();
  [[nodiscard]] std::uint64_t snapshot_checksum() const { return snapshot_checksum_; }
  [[nodiscard]] const GraphicsContext& graphics() const { return graphics_; }
  [[nodiscard]] std::size_t agent_count() const { return agents_.size(); }

 private:
  fiberjob::Task<> agent_ai(fiberjob::Context& ctx, std::uint32_t id, std::uint32_t first_frame);
  fiberjob::Task<> agent_loop(fiberjob::Context& ctx, std::uint32_t id, std::uint32_t first_frame);
  fiberjob::Task<> present_loop(fiberjob::Context& ctx);
  std::optional<PathRequest> ai_step(std::uint32_t id);
  std::optional<PathRequest> decide(std::uint32_t id);
  PathRequest request_path(std::uint32_t id);
  void find_agent_path(std::size_t worker, std::uint32_t id, PathRequest request);
  void frame_job(fiberjob::Context& ctx);
  void build_grid();
  void move_agents(std::size_t lo, std::size_t hi);
  void render_prep();
  fiberjob::Counter& gate(std::uint32_t frame) { return gates_[frame % 2]; }
  Cell random_passable(std::uint64_t& rng) const;
  Cell random_goal_near(Cell from, std::uint64_t& rng) const;

  const GridMap& map_;
  fiberjob::JobSystem& jobs_;
  fiberjob::FrameAllocator& memory_;
  std::vector<Agent> agents_;
  std::vector<Vec2> positions_;       ///< read by movement (previous frame)
  std::vector<Vec2> next_positions_;  ///< written by movement
  std::vector<Cell> passable_cells_;
  std::vector<std::unique_ptr<SearchScratch>> scratch_;  ///< one per worker
  fiberjob::Counter gates_[2];
  fiberjob::Counter ai_done_;
  fiberjob::Counter ai_jobs_;
  std::optional<fiberjob::AttachedThread> main_;  ///< the graphics context's thread
  GraphicsContext graphics_;                      ///< made (owned) by the main thread
  fiberjob::Event snapshot_ready_{fiberjob::Event::Mode::Auto};  ///< one set per frame
  fiberjob::Counter frame_done_;     ///< the frame job and the frame's submission
  const Sprite* sprites_ = nullptr;  ///< this frame's render snapshot (frame memory)
  std::atomic<bool> stopping_{false};
  std::vector<std::stop_source> ai_stops_;  ///< one per agent once start(true) ran
  std::uint64_t ai_replaced_ = 0;
  std::atomic<std::uint64_t> ai_cancelled_{0};
  // Spatial grid of the previous positions (frame memory): agents sorted by bucket.
  std::uint32_t* bucket_start_ = nullptr;
  std::uint32_t* bucket_agents_ = nullptr;
  int bucket_columns_ = 0;
  int bucket_rows_ = 0;
  std::uint64_t snapshot_checksum_ = 0;
  std::atomic<std::uint64_t> paths_{0};
  std::atomic<std::uint64_t> path_failures_{0};
  bool record_paths_;
  std::vector<std::vector<PathRecord>> records_;  ///< one per worker (check mode)
};

}  // namespace game
