#pragma once
// Job: what the queues carry — one machine word, so deque slots can be std::atomic.
//
//   bits 0-1  kind:     0 = Run (JobRecord*), 1 = Resume (Fiber*), 2 = ResumeCoroutine (the
//                       WaitNode* of the awaiter whose coroutine to resume), 3 = ResumeChain
//                       (the first WaitNode* of a drained wait list's remainder)
//   bits 2-3  priority: Priority::High / Normal / Low
//   bits 4-5  Run only: the job's stack class (JobOptions::stack_class; 0 = the default)
//   bits 4-   pointer:  JobRecord* is 64-byte aligned (so for Run bits 4-5 are free too),
//                       Fiber* aligned to a cache line (64 or 128 bytes), WaitNode* 16-byte
//                       aligned, so the low four bits are free.
// Zero is "no job" (an empty deque or queue returns it).

#include <cassert>
#include <cstdint>

#include "fiberjob/config.hpp"
#include "fiberjob/detail/job_record.hpp"
#include "fiberjob/detail/wait_node.hpp"

namespace fiberjob::detail {

struct Fiber;

class Job {
 public:
  enum class Kind : std::uintptr_t { Run = 0, Resume = 1, ResumeCoroutine = 2, ResumeChain = 3 };

  constexpr Job() noexcept = default;
  static Job from_bits(std::uintptr_t bits) noexcept { return Job(bits); }

  static Job run(JobRecord* record, Priority priority, std::uint8_t stack_class = 0) noexcept {
    assert(stack_class < kMaxStackClasses);
    return make(reinterpret_cast<std::uintptr_t>(record) |
                    (static_cast<std::uintptr_t>(stack_class) << kStackClassShift),
                Kind::Run, priority);
  }
  static Job resume(Fiber* fiber, Priority priority) noexcept {
    return make(reinterpret_cast<std::uintptr_t>(fiber), Kind::Resume, priority);
  }
  static Job resume_coroutine(WaitNode* node, Priority priority) noexcept {
    return make(reinterpret_cast<std::uintptr_t>(node), Kind::ResumeCoroutine, priority);
  }

  /// The waiters from `head` on (linked through WaitNode::next, drained from a wait list): the
  /// worker that takes it makes them runnable a chunk at a time (run_chain).
  static Job resume_chain(WaitNode* head, Priority priority) noexcept {
    return make(reinterpret_cast<std::uintptr_t>(head), Kind::ResumeChain, priority);
  }

  [[nodiscard]] explicit operator bool() const noexcept { return bits_ != 0; }
  [[nodiscard]] std::uintptr_t bits() const noexcept { return bits_; }
  [[nodiscard]] Kind kind() const noexcept { return static_cast<Kind>(bits_ & kKindMask); }
  [[nodiscard]] Priority priority() const noexcept {
    return static_cast<Priority>((bits_ & kPriorityMask) >> 2);
  }
  [[nodiscard]] JobRecord* record() const noexcept {
    return reinterpret_cast<JobRecord*>(bits_ & ~(kTagMask | kStackClassMask));
  }
  /// Run only: true when the job runs on the default stack class (0). One test of the word.
  [[nodiscard]] bool default_stack_class() const noexcept { return (bits_ & kStackClassMask) == 0; }
  /// Run only: the stack class the job must run on.
  [[nodiscard]] std::uint8_t stack_class() const noexcept {
    return static_cast<std::uint8_t>((bits_ & kStackClassMask) >> kStackClassShift);
  }
  [[nodiscard]] WaitNode* node() const noexcept {
    return reinterpret_cast<WaitNode*>(bits_ & ~kTagMask);
  }
  [[nodiscard]] Fiber* fiber() const noexcept {
    return reinterpret_cast<Fiber*>(bits_ & ~kTagMask);
  }

 private:
  static constexpr std::uintptr_t kKindMask = 0x3;
  static constexpr std::uintptr_t kPriorityMask = 0xC;
  static constexpr std::uintptr_t kTagMask = 0xF;
  static constexpr unsigned kStackClassShift = 4;
  static constexpr std::uintptr_t kStackClassMask = 0x30;
  static_assert(kMaxStackClasses <= 4, "the stack class has two bits");

  explicit constexpr Job(std::uintptr_t bits) noexcept : bits_(bits) {}
  static Job make(std::uintptr_t pointer, Kind kind, Priority priority) noexcept {
    assert((pointer & kTagMask) == 0 && (pointer & ~kStackClassMask) != 0);
    return Job(pointer | static_cast<std::uintptr_t>(kind) |
               (static_cast<std::uintptr_t>(priority) << 2));
  }

  std::uintptr_t bits_ = 0;
};

}  // namespace fiberjob::detail
