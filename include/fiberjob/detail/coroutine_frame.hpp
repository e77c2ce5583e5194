#pragma once
/// \file
/// Coroutine frame memory of `Task<T>`: per-thread recycling pools (internal; used by
/// `TaskPromise`'s `operator new` and `operator delete`).

#include <cstddef>

namespace fiberjob::detail {

/// Largest frame, in bytes, that the per-thread pools recycle; larger frames go to the global
/// `operator new`.
inline constexpr std::size_t kMaxPooledFrameBytes = 4096;

/// Returns memory for a coroutine frame of `bytes` bytes, aligned for any scalar type
/// (`alignof(std::max_align_t)`). A frame of at most kMaxPooledFrameBytes comes from the
/// calling thread's pool (a free list per 64-byte size class, refilled from the global
/// `operator new` only when empty), so a warm worker allocates frames without the global
/// allocator. Thread-safety: any thread; each thread has its own pool. Suspends: no.
/// Errors: std::bad_alloc, as `operator new`.
void* allocate_coroutine_frame(std::size_t bytes);

/// Gives back a frame of `bytes` bytes (the size it was allocated with) from any thread: it
/// goes to the calling thread's pool (a coroutine may end on another thread than it began),
/// or to the global `operator delete` when that pool's size class holds enough already.
/// Thread-safety: any thread. Suspends: no.
void free_coroutine_frame(void* frame, std::size_t bytes) noexcept;

}  // namespace fiberjob::detail
