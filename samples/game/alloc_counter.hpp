#pragma once
// Counts calls to the global allocator (operator new) in the game-frame sample, to report
// allocations per frame. alloc_counter.cpp replaces the global operator new/delete.

#include <cstdint>

namespace game {

/// Global operator new calls so far (all threads).
std::uint64_t global_allocations() noexcept;

}  // namespace game
