// The game-frame sample's world: AI coroutines, A* jobs, movement batches, render prep.

#include "world.hpp"

#include <algorithm>
#include <cmath>
#include <memory_resource>

namespace game {
namespace {

constexpr float kDt = 1.0f / 60.0f;  // fixed simulation step (s)
constexpr float kSpeed = 4.0f;       // cells per second
constexpr float kRadius = 0.35f;     // agent radius (cells), for local avoidance
constexpr int kBucketCells = 4;      // spatial grid bucket edge (cells)
constexpr float kArrive = 0.25f;     // distance at which a waypoint counts as reached (cells)
constexpr int kGoalRange = 40;       // new goals are picked within this many cells
constexpr std::uint32_t kMaxIdleFrames = 90;  // agents rest up to 1.5 s between trips
constexpr std::size_t kPathCapacity = 1024;   // path cells reserved per agent

std::uint64_t next_random(std::uint64_t& state) {  // splitmix64
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

Vec2 centre(Cell c) { return Vec2{static_cast<float>(c.x) + 0.5f, static_cast<float>(c.y) + 0.5f}; }

Cell cell_of(Vec2 p) {
  return Cell{static_cast<int>(std::floor(p.x)), static_cast<int>(std::floor(p.y))};
}

}  // namespace

World::World(const GridMap& map, fiberjob::JobSystem& jobs, fiberjob::FrameAllocator& memory,
             std::uint32_t agents, std::uint64_t seed, bool record_paths,
             std::optional<fiberjob::AttachedThread> main)
    : map_(map),
      jobs_(jobs),
      memory_(memory),
      agents_(agents),
      positions_(agents),
      next_positions_(agents),
      main_(main),
      graphics_(agents),
      record_paths_(record_paths),
      // One scratch and record list per thread that runs jobs: the workers and the attached
      // main thread (its slot index follows the workers').
      records_(main ? main->index() + 1 : jobs.worker_count()) {
  for (int y = 0; y < map.height(); ++y) {
    for (int x = 0; x < map.width(); ++x) {
      if (map.passable(x, y)) passable_cells_.push_back(Cell{x, y});
    }
  }
  for (std::size_t w = 0; w < records_.size(); ++w) {
    scratch_.push_back(std::make_unique<SearchScratch>(map));
  }
  std::uint64_t rng = seed;
  for (std::uint32_t i = 0; i < agents; ++i) {
    Agent& agent = agents_[i];
    agent.rng = next_random(rng);
    const Cell spawn = random_passable(agent.rng);
    positions_[i] = centre(spawn);
    agent.target = positions_[i];
    // Capacity for paths of up to kPathCapacity cells, written once now (resize touches the
    // pages, clear keeps them): a long path later neither allocates nor page-faults, so the
    // resident set stays flat once the frames run (the soak, scripts/soak.sh, checks that).
    agent.path.resize(kPathCapacity);
    agent.path.clear();
    agent.idle_frames = static_cast<std::uint32_t>(next_random(agent.rng) % kMaxIdleFrames);
  }
  bucket_columns_ = (map.width() + kBucketCells - 1) / kBucketCells;
  bucket_rows_ = (map.height() + kBucketCells - 1) / kBucketCells;
}

World::~World() = default;

Cell World::random_passable(std::uint64_t& rng) const {
  return passable_cells_[next_random(rng) % passable_cells_.size()];
}

Cell World::random_goal_near(Cell from, std::uint64_t& rng) const {
  for (int attempt = 0; attempt < 16; ++attempt) {
    const auto r = next_random(rng);
    const Cell goal{from.x + static_cast<int>(r % (2 * kGoalRange + 1)) - kGoalRange,
                    from.y + static_cast<int>((r >> 32) % (2 * kGoalRange + 1)) - kGoalRange};
    if (map_.passable(goal)) return goal;
  }
  return random_passable(rng);  // crowded corner: anywhere (maybe unreachable: counted)
}

void World::start(bool replaceable) {
  gate(0).add(1);
  if (main_) jobs_.run(ai_jobs_, [this](fiberjob::Context& ctx) { return present_loop(ctx); });
  for (std::uint32_t id = 0; id < agents_.size(); ++id) {
    auto ai = [this, id](fiberjob::Context& ctx) { return agent_ai(ctx, id, 0); };
    if (replaceable) {
      ai_stops_.emplace_back();
      jobs_.run(ai_jobs_, ai, ai_stops_.back().get_token());
    } else {
      jobs_.run(ai_jobs_, ai);
    }
  }
}

void World::replace_behaviour(std::uint32_t id, std::uint32_t frame) {
  // The old coroutine waits on gate(frame) (or is on its way there): the stop makes that
  // wait complete with Cancelled once the gate opens, before it takes a step this frame.
  ai_stops_[id].request_stop();
  ai_stops_[id] = std::stop_source();
  jobs_.run(
      ai_jobs_, [this, id, frame](fiberjob::Context& ctx) { return agent_ai(ctx, id, frame); },
      ai_stops_[id].get_token());
  ++ai_replaced_;
}

fiberjob::Task<> World::agent_ai(fiberjob::Context& ctx, std::uint32_t id,
                                 std::uint32_t first_frame) {
  try {
    co_await agent_loop(ctx, id, first_frame);  // a child task: the same job, the same token
  } catch (const fiberjob::Error& error) {
    if (error.code() != fiberjob::ErrorCode::Cancelled) throw;
    ai_cancelled_.fetch_add(1, std::memory_order_relaxed);  // replaced: the new one goes on
  }
}

fiberjob::Task<> World::agent_loop(fiberjob::Context& ctx, std::uint32_t id,
                                   std::uint32_t first_frame) {
  for (std::uint32_t frame = first_frame;; ++frame) {
    co_await ctx.wait(gate(frame));  // the coroutine sleeps until the frame starts (no fiber held)
    Agent& agent = agents_[id];
    if (stopping_.load(std::memory_order_relaxed)) {
      if (agent.state == AgentState::AwaitPath) co_await ctx.wait(agent.path_done);
      co_return;
    }
    if (agent.state == AgentState::AwaitPath) {
      // Requested last frame; usually finished meanwhile, else wait for it now.
      co_await ctx.wait(agent.path_done);
    }
    if (const std::optional<PathRequest> request = ai_step(id)) {
      ctx.spawn(agent.path_done,
                [this, id, r = *request] { find_agent_path(jobs_.current_worker_index(), id, r); });
    }
    ai_done_.signal();
  }
}

fiberjob::Task<> World::present_loop(fiberjob::Context& ctx) {
  for (;;) {
    co_await snapshot_ready_;  // the render-prep job of this frame set it (on a worker)
    if (stopping_.load(std::memory_order_relaxed)) co_return;
    // The graphics context may be used on the main thread only: hop there. The main thread
    // is in js.wait(frame_done_) and runs the hop inside its wait.
    co_await ctx.resume_on(*main_);
    graphics_.submit({sprites_, agents_.size()});
    frame_done_.signal();  // the frame is on screen: the main thread's wait may return
    // Back to the workers: a coroutine stays on the attached thread until its next suspension,
    // and the main thread has its own frame loop to go on with.
    co_await ctx.resume_on_any();
  }
}

std::optional<PathRequest> World::ai_step(std::uint32_t id) {
  Agent& agent = agents_[id];
  if (agent.state == AgentState::AwaitPath) {  // the search asked for last frame has finished
    agent.state = agent.path_found ? AgentState::Following : AgentState::NeedPath;
    agent.next_waypoint = 1;
  }
  return decide(id);
}

std::optional<PathRequest> World::decide(std::uint32_t id) {
  Agent& agent = agents_[id];
  const Vec2 position = positions_[id];
  if (agent.state == AgentState::Following) {
    while (agent.next_waypoint < agent.path.size()) {
      const Vec2 target = centre(agent.path[agent.next_waypoint]);
      const float dx = target.x - position.x;
      const float dy = target.y - position.y;
      if (dx * dx + dy * dy > kArrive * kArrive) break;
      ++agent.next_waypoint;
    }
    if (agent.next_waypoint < agent.path.size()) {
      agent.target = centre(agent.path[agent.next_waypoint]);
      return std::nullopt;
    }
    agent.state = AgentState::NeedPath;  // arrived: rest a while, then pick a new goal
    agent.idle_frames = static_cast<std::uint32_t>(next_random(agent.rng) % kMaxIdleFrames);
  }
  if (agent.state == AgentState::NeedPath) {
    if (agent.idle_frames > 0) {
      --agent.idle_frames;
      return std::nullopt;
    }
    return request_path(id);
  }
  return std::nullopt;
}

PathRequest World::request_path(std::uint32_t id) {
  Agent& agent = agents_[id];
  const Cell start = cell_of(positions_[id]);
  agent.goal = random_goal_near(start, agent.rng);
  agent.state = AgentState::AwaitPath;
  agent.target = positions_[id];  // stand still while the path is computed
  return PathRequest{start, agent.goal};
}

void World::find_agent_path(std::size_t worker, std::uint32_t id, PathRequest request) {
  // A* on this worker's scratch; the open list and the raw path live in frame memory.
  FIBERJOB_TRACE_SCOPE("A* search");
  const Cell start = request.start;
  const Cell goal = request.goal;
  PathResult result = find_path(map_, start, goal, *scratch_[worker], memory_.resource());
  Agent& agent = agents_[id];
  agent.path_found = result.found;
  agent.path_length = result.length;
  agent.path.assign(result.cells.begin(), result.cells.end());  // capacity reserved up front
  paths_.fetch_add(1, std::memory_order_relaxed);
  if (!result.found) path_failures_.fetch_add(1, std::memory_order_relaxed);
  if (record_paths_) {
    records_[worker].push_back(PathRecord{start, goal, result.found ? result.length : -1.0,
                                          std::vector<Cell>(agent.path)});
  }
}

void World::run_frame(std::uint32_t frame) {
  memory_.begin_frame();
  ai_done_.add(static_cast<std::int64_t>(agents_.size()));
  gate(frame + 1).add(1);         // arm the next frame's gate before opening this one
  gate(frame).signal();           // every AI coroutine wakes for this frame
  if (main_) frame_done_.add(1);  // the submission of this frame's snapshot (present_loop)
  jobs_.run(frame_done_, [this](fiberjob::Context& ctx) { frame_job(ctx); });
  jobs_.wait(frame_done_);
}

void World::frame_job(fiberjob::Context& ctx) {
  fiberjob::this_fiber::wait(ai_done_);  // every agent decided where to go this frame
  build_grid();
  fiberjob::parallel_for(ctx, std::size_t{0}, agents_.size(), std::size_t{0},
                         [this](std::size_t lo, std::size_t hi) { move_agents(lo, hi); });
  positions_.swap(next_positions_);
  fiberjob::Counter render;  // render prep depends on movement: it starts after it
  ctx.spawn(render, [this] {
    render_prep();
    snapshot_ready_.set();  // the presenter submits it (on the main thread)
  });
  fiberjob::this_fiber::wait(render);
}

void World::build_grid() {
  // Counting sort of the agents by bucket, in frame memory: scratch for this frame only.
  FIBERJOB_TRACE_SCOPE("build grid");
  const std::size_t buckets = static_cast<std::size_t>(bucket_columns_) * bucket_rows_;
  bucket_start_ = memory_.allocate_array<std::uint32_t>(buckets + 1);
  bucket_agents_ = memory_.allocate_array<std::uint32_t>(agents_.size());
  std::fill(bucket_start_, bucket_start_ + buckets + 1, 0u);
  auto bucket_of = [this](Vec2 p) {
    const int bx = std::clamp(static_cast<int>(p.x) / kBucketCells, 0, bucket_columns_ - 1);
    const int by = std::clamp(static_cast<int>(p.y) / kBucketCells, 0, bucket_rows_ - 1);
    return static_cast<std::size_t>(by) * bucket_columns_ + bx;
  };
  for (const Vec2& p : positions_) ++bucket_start_[bucket_of(p) + 1];
  for (std::size_t b = 0; b < buckets; ++b) bucket_start_[b + 1] += bucket_start_[b];
  std::uint32_t* fill = memory_.allocate_array<std::uint32_t>(buckets);
  std::copy(bucket_start_, bucket_start_ + buckets, fill);
  for (std::uint32_t i = 0; i < agents_.size(); ++i)
    bucket_agents_[fill[bucket_of(positions_[i])]++] = i;
}

void World::move_agents(std::size_t lo, std::size_t hi) {
  FIBERJOB_TRACE_SCOPE("movement");
  for (std::size_t i = lo; i < hi; ++i) {
    const Vec2 p = positions_[i];
    const Vec2 target = agents_[i].target;
    float vx = target.x - p.x;
    float vy = target.y - p.y;
    const float distance = std::sqrt(vx * vx + vy * vy);
    if (distance > 1e-4f) {
      const float speed = std::min(kSpeed, distance / kDt);
      vx = vx / distance * speed;
      vy = vy / distance * speed;
    } else {
      vx = vy = 0;
    }
    // Local avoidance: push away from agents in the neighbouring buckets.
    const int bx = static_cast<int>(p.x) / kBucketCells;
    const int by = static_cast<int>(p.y) / kBucketCells;
    for (int y = std::max(0, by - 1); y <= std::min(bucket_rows_ - 1, by + 1); ++y) {
      for (int x = std::max(0, bx - 1); x <= std::min(bucket_columns_ - 1, bx + 1); ++x) {
        const std::size_t b = static_cast<std::size_t>(y) * bucket_columns_ + x;
        for (std::uint32_t k = bucket_start_[b]; k < bucket_start_[b + 1]; ++k) {
          const std::uint32_t other = bucket_agents_[k];
          if (other == i) continue;
          const float dx = p.x - positions_[other].x;
          const float dy = p.y - positions_[other].y;
          const float d2 = dx * dx + dy * dy;
          if (d2 < 4 * kRadius * kRadius && d2 > 1e-8f) {
            const float push = (2 * kRadius - std::sqrt(d2)) * 2.0f;
            vx += dx * push;
            vy += dy * push;
          }
        }
      }
    }
    Vec2 next{p.x + vx * kDt, p.y + vy * kDt};
    // Stay on passable cells: slide along an axis, or stay.
    if (!map_.passable(cell_of(next))) {
      if (map_.passable(cell_of(Vec2{next.x, p.y}))) {
        next.y = p.y;
      } else if (map_.passable(cell_of(Vec2{p.x, next.y}))) {
        next.x = p.x;
      } else {
        next = p;
      }
    }
    next_positions_[i] = next;
  }
}

void World::render_prep() {
  FIBERJOB_TRACE_SCOPE("render prep");
  // A frame snapshot in frame memory (what a renderer would consume), with a checksum so the
  // work is observable.
  Sprite* sprites = memory_.allocate_array<Sprite>(agents_.size());
  sprites_ = sprites;
  std::uint64_t checksum = 0;
  for (std::uint32_t i = 0; i < agents_.size(); ++i) {
    sprites[i] = Sprite{positions_[i].x, positions_[i].y, i};
    checksum = checksum * 1099511628211ull ^
               static_cast<std::uint64_t>(positions_[i].x * 64.0f + positions_[i].y * 8192.0f);
  }
  snapshot_checksum_ = checksum;
}

void World::stop(std::uint32_t next_frame) {
  stopping_.store(true, std::memory_order_relaxed);
  gate(next_frame).signal();  // the AI coroutines wake, see stopping_ and return
  snapshot_ready_.set();      // so does the presenter
  jobs_.wait(ai_jobs_);
}

FrameCounters World::counters() const {
  return FrameCounters{paths_.load(), path_failures_.load(), ai_replaced_, ai_cancelled_.load()};
}

std::vector<PathRecord> World::take_path_records() {
  std::vector<PathRecord> all;
  for (auto& per_worker : records_) {
    for (auto& record : per_worker) all.push_back(std::move(record));
    per_worker.clear();
  }
  return all;
}

}  // namespace game
