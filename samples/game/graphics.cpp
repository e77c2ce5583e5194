// The game-frame sample's graphics-context stand-in.

#include "graphics.hpp"

#include <algorithm>

namespace game {

GraphicsContext::GraphicsContext(std::size_t capacity)
    : owner_(std::this_thread::get_id()), vertex_buffer_(capacity) {}

// Out of line: glibc declares pthread_self() const, so inside a coroutine that changed threads
// an inlined get_id() could be one computed before its co_await (docs/api.md).
void GraphicsContext::submit(std::span<const Sprite> sprites) {
  if (std::this_thread::get_id() != owner_) {
    wrong_thread_.fetch_add(1);
    return;
  }
  std::copy_n(sprites.begin(), std::min(sprites.size(), vertex_buffer_.size()),
              vertex_buffer_.begin());
  ++frames_;
}

}  // namespace game
