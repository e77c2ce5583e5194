#pragma once
// A stand-in for the graphics context of the game-frame sample: like an OpenGL context or a
// window system's surface, it may be used on the thread that created it (the main thread)
// only. Each frame's render snapshot is submitted to it: copied into its own vertex buffer,
// the "upload" a renderer would make. It counts the frames and the calls from a wrong thread.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <thread>
#include <vector>

namespace game {

/// One agent as the renderer draws it (the render snapshot, built in frame memory).
struct Sprite {
  float x;
  float y;
  std::uint32_t agent;
};

class GraphicsContext {
 public:
  /// Owned by the calling thread; `capacity` sprites fit in its vertex buffer.
  explicit GraphicsContext(std::size_t capacity);

  /// Uploads one frame's snapshot. Must run on the owner thread: a call from another thread is
  /// counted in wrong_thread() and uploads nothing. Allocates nothing (the buffer is sized at
  /// construction).
  void submit(std::span<const Sprite> sprites);

  /// Frames submitted on the owner thread.
  [[nodiscard]] std::uint64_t frames() const { return frames_; }
  /// Calls of submit from another thread than the owner (0 in a correct program).
  [[nodiscard]] std::uint64_t wrong_thread() const { return wrong_thread_.load(); }

 private:
  std::thread::id owner_;
  std::vector<Sprite> vertex_buffer_;
  std::uint64_t frames_ = 0;
  std::atomic<std::uint64_t> wrong_thread_{0};  // bumped from a wrong thread only
};

}  // namespace game
