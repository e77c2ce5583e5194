#pragma once
// Sanitizer annotations for fiber switches on Boost.Context's fcontext path, which knows nothing
// of ASan or TSan. Protocol: docs/sanitizers.md (verified on Debian 12 with g++ 12 and
// clang 14). Every helper is force-inlined: a real call between the annotation and the jump
// unbalances TSan's shadow stack.

#include <cstddef>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FIBERJOB_ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define FIBERJOB_TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(FIBERJOB_ASAN)
#define FIBERJOB_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(FIBERJOB_TSAN)
#define FIBERJOB_TSAN 1
#endif

#if defined(FIBERJOB_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(FIBERJOB_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

#define FIBERJOB_ALWAYS_INLINE inline __attribute__((always_inline))

namespace fiberjob::detail {

/// What the sanitizers need to know about one execution stack (a pooled fiber or a thread's
/// native stack). Empty in builds without sanitizers.
struct SanitizerStack {
#if defined(FIBERJOB_TSAN)
  void* tsan_fiber = nullptr;
#endif
#if defined(FIBERJOB_ASAN)
  void* asan_fake_stack = nullptr;
  const void* bottom = nullptr;
  std::size_t size = 0;
#endif
};

/// Records the bounds of a pooled fiber's stack (lowest address, bytes).
/// Clears ASan's shadow of fresh stack memory (a new mapping). The address range may have held
/// another mapping before, whose stack frames left poison in the shadow (ASan does not clear
/// it on munmap), and a new fiber's frames would then trip over it.
FIBERJOB_ALWAYS_INLINE void san_clear_stack_memory([[maybe_unused]] const void* memory,
                                                   [[maybe_unused]] std::size_t size) noexcept {
#if defined(FIBERJOB_ASAN)
  __asan_unpoison_memory_region(memory, size);
#endif
}

FIBERJOB_ALWAYS_INLINE void san_set_bounds([[maybe_unused]] SanitizerStack& s,
                                           [[maybe_unused]] const void* bottom,
                                           [[maybe_unused]] std::size_t size) noexcept {
#if defined(FIBERJOB_ASAN)
  s.bottom = bottom;
  s.size = size;
#endif
}

/// For a thread's native stack: adopt the thread's current TSan fiber.
FIBERJOB_ALWAYS_INLINE void san_adopt_thread([[maybe_unused]] SanitizerStack& s) noexcept {
#if defined(FIBERJOB_TSAN)
  s.tsan_fiber = __tsan_get_current_fiber();
#endif
}

/// Creates the TSan fiber of a pooled fiber (once).
FIBERJOB_ALWAYS_INLINE void san_create([[maybe_unused]] SanitizerStack& s) noexcept {
#if defined(FIBERJOB_TSAN)
  s.tsan_fiber = __tsan_create_fiber(0);
#endif
}

/// Destroys the TSan fiber of a pooled fiber that has finished.
FIBERJOB_ALWAYS_INLINE void san_destroy([[maybe_unused]] SanitizerStack& s) noexcept {
#if defined(FIBERJOB_TSAN)
  __tsan_destroy_fiber(s.tsan_fiber);
  s.tsan_fiber = nullptr;
#endif
}

/// Tell TSan we run on `to` now, without an ASan stack switch (used around Boost.Context's
/// construction jump, and by a resumer whose target just finished).
FIBERJOB_ALWAYS_INLINE void san_tsan_enter([[maybe_unused]] SanitizerStack& to) noexcept {
#if defined(FIBERJOB_TSAN)
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
}

/// Right before jumping from `from` to `to`.
FIBERJOB_ALWAYS_INLINE void san_start_switch([[maybe_unused]] SanitizerStack& from,
                                             [[maybe_unused]] SanitizerStack& to) noexcept {
#if defined(FIBERJOB_ASAN)
  __sanitizer_start_switch_fiber(&from.asan_fake_stack, to.bottom, to.size);
#endif
#if defined(FIBERJOB_TSAN)
  __tsan_switch_to_fiber(to.tsan_fiber, 0);
#endif
}

/// Right before the last jump out of a finishing fiber (its fake stack is discarded).
FIBERJOB_ALWAYS_INLINE void san_start_final_switch([[maybe_unused]] SanitizerStack& to) noexcept {
#if defined(FIBERJOB_ASAN)
  __sanitizer_start_switch_fiber(nullptr, to.bottom, to.size);
#endif
}

/// Right after arriving on `self`'s stack; stores the bounds of the stack we came from in `prev`
/// (passed explicitly, never through a thread_local: we may be on another thread now).
FIBERJOB_ALWAYS_INLINE void san_finish_switch([[maybe_unused]] SanitizerStack& self,
                                              [[maybe_unused]] SanitizerStack* prev) noexcept {
#if defined(FIBERJOB_ASAN)
  if (prev != nullptr) {
    __sanitizer_finish_switch_fiber(self.asan_fake_stack, &prev->bottom, &prev->size);
  } else {
    __sanitizer_finish_switch_fiber(self.asan_fake_stack, nullptr, nullptr);
  }
#endif
}

}  // namespace fiberjob::detail
