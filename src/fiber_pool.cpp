// FiberPool: up-front stacks with guard pages, a tagged Treiber free stack, lazy construction
// and orderly retirement of Boost.Context fibers.

#include "fiber_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <new>
#include <system_error>

#include "stack_guard.hpp"

namespace fiberjob::detail {
namespace {

/// Stacks belong to the pool, not to Boost.Context: the fiber record's deallocation is a no-op.
struct PoolStackAllocator {
  boost::context::stack_context allocate() { std::abort(); }  // never called: preallocated
  void deallocate(boost::context::stack_context&) noexcept {}
};

/// The free-stack head packs {tag:43 | index+1:21}: 2^21 - 1 fibers at most (the Config limit
/// is 2^20), and a tag that wraps only after 2^43 pushes and pops — far beyond any window in
/// which a stalled CAS could see the same head again (ABA).
constexpr unsigned kIndexBits = 21;
constexpr std::uint64_t kIndexMask = (std::uint64_t{1} << kIndexBits) - 1;

constexpr std::uint64_t pack(std::uint64_t tag, std::uint32_t index_plus_one) noexcept {
  return (tag << kIndexBits) | index_plus_one;
}
constexpr std::uint32_t index_of(std::uint64_t head) noexcept {
  return static_cast<std::uint32_t>(head & kIndexMask);
}
constexpr std::uint64_t tag_of(std::uint64_t head) noexcept { return head >> kIndexBits; }

/// Guard below each stack: 64 KiB of PROT_NONE address space (no memory), so that a frame with
/// large locals cannot jump over it into the neighbouring stack.
constexpr std::size_t kGuardBytes = 64 * 1024;

}  // namespace

FiberPool::FiberPool(Scheduler& scheduler, std::uint32_t count, std::size_t stack_size,
                     FiberEntry entry)
    : scheduler_(scheduler), count_(count), stack_size_(stack_size), entry_(entry) {
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  guard_size_ = (kGuardBytes + page - 1) / page * page;
  const std::size_t stride = guard_size_ + stack_size_;
  region_size_ = stride * count_;
  void* region = ::mmap(nullptr, region_size_, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (region == MAP_FAILED) {
    throw std::system_error(errno, std::generic_category(),
                            "fiberjob: mmap of the fiber stacks failed (Config::fiber_count x "
                            "Config::fiber_stack_size too large?)");
  }
  region_ = static_cast<unsigned char*>(region);
  for (std::uint32_t i = 0; i < count_; ++i) {
    if (::mprotect(region_ + i * stride, guard_size_, PROT_NONE) != 0) {
      const int error = errno;
      ::munmap(region_, region_size_);
      throw std::system_error(error, std::generic_category(),
                              "fiberjob: mprotect of a fiber stack guard page failed");
    }
  }
  fibers_ = static_cast<Fiber*>(
      ::operator new (sizeof(Fiber) * count_, std::align_val_t{alignof(Fiber)}));
  for (std::uint32_t i = 0; i < count_; ++i) {
    Fiber* fiber = ::new (static_cast<void*>(&fibers_[i])) Fiber();
    fiber->index = i;
    fiber->scheduler = &scheduler_;
    fiber->stack_bottom = region_ + i * stride + guard_size_;
    fiber->stack_size = stack_size_;
    san_set_bounds(fiber->san, fiber->stack_bottom, fiber->stack_size);
  }
  // Push in reverse so that index 0 is handed out first (reuse keeps the hot stacks warm).
  std::uint64_t head = 0;
  for (std::uint32_t i = count_; i-- > 0;) {
    // relaxed: published by the release store of free_head_ below (and by the thread starts).
    fibers_[i].next_free.store(index_of(head), std::memory_order_relaxed);
    head = pack(0, i + 1);
  }
  free_head_.store(head, std::memory_order_release);  // release: published by the scheduler's
                                                      // thread start anyway; pairs with acquire()
  register_guarded_pool(this);
}

FiberPool::~FiberPool() {
  unregister_guarded_pool(this);
  for (std::uint32_t i = 0; i < count_; ++i) {
    // A fiber still suspended holds a live Boost.Context continuation: destroying it would
    // unwind the job's stack through forced_unwind. It is left alone (reported by retire_all).
    if (state_of(fibers_[i]) != FiberState::Suspended) fibers_[i].~Fiber();
  }
  ::operator delete (fibers_, std::align_val_t{alignof(Fiber)});
  ::munmap(region_, region_size_);
}

void FiberPool::construct_context(Fiber& fiber) {
  boost::context::stack_context stack;
  stack.size = fiber.stack_size;
  stack.sp = static_cast<unsigned char*>(fiber.stack_bottom) + fiber.stack_size;
  const boost::context::preallocated preallocated(stack.sp, stack.size, stack);
  // Constructing a Boost.Context fiber jumps into its entry and back: bracket it for TSan.
  SanitizerStack here;
  san_adopt_thread(here);
  san_create(fiber.san);
  san_tsan_enter(fiber.san);
  FiberEntry entry = entry_;
  Fiber* self = &fiber;
  fiber.context = boost::context::fiber(
      std::allocator_arg, preallocated, PoolStackAllocator{},
      [entry, self](boost::context::fiber&& caller) { return entry(self, std::move(caller)); });
  san_tsan_enter(here);
  fiber.started = true;
}

Fiber* FiberPool::acquire() {
  // acquire: pairs with the release CAS in release(), so the popped fiber's `context` and
  // `next_free` written by the fiber that released it are visible.
  std::uint64_t head = free_head_.load(std::memory_order_acquire);
  Fiber* fiber = nullptr;
  for (;;) {
    const std::uint32_t index_plus_one = index_of(head);
    if (index_plus_one == 0) return nullptr;
    fiber = &at(index_plus_one - 1);
    // relaxed: ordered by the acquire that read `head`; a stale value fails the tagged CAS.
    const std::uint32_t next = fiber->next_free.load(std::memory_order_relaxed);
    // acquire on success and failure: same pairing as the load above.
    if (free_head_.compare_exchange_weak(head, pack(tag_of(head) + 1, next),
                                         std::memory_order_acquire, std::memory_order_acquire)) {
      break;
    }
  }
  // relaxed: statistics only.
  const std::uint32_t used = in_use_.fetch_add(1, std::memory_order_relaxed) + 1;
  std::uint32_t high = high_water_.load(std::memory_order_relaxed);
  while (used > high && !high_water_.compare_exchange_weak(high, used, std::memory_order_relaxed)) {
  }
  set_state(*fiber, FiberState::Running);
  if (!fiber->started) construct_context(*fiber);
  return fiber;
}

void FiberPool::release(Fiber* fiber) noexcept {
  set_state(*fiber, FiberState::Pooled);
  fiber->pending = Job{};
  fiber->node.next = nullptr;
  in_use_.fetch_sub(1, std::memory_order_relaxed);  // relaxed: statistics only
  // relaxed: only a first guess for the CAS.
  std::uint64_t head = free_head_.load(std::memory_order_relaxed);
  for (;;) {
    // relaxed: published by the release CAS below.
    fiber->next_free.store(index_of(head), std::memory_order_relaxed);
    // release: pairs with the acquire in acquire(); publishes the fiber's state and context.
    if (free_head_.compare_exchange_weak(head, pack(tag_of(head) + 1, fiber->index + 1),
                                         std::memory_order_release, std::memory_order_relaxed)) {
      return;
    }
  }
}

std::uint32_t FiberPool::retire_all() noexcept {
  Fiber here;
  set_state(here, FiberState::Native);
  san_adopt_thread(here.san);
  std::uint32_t suspended = 0;
  for (std::uint32_t i = 0; i < count_; ++i) {
    Fiber& fiber = at(i);
    if (state_of(fiber) == FiberState::Suspended) {
      ++suspended;
      continue;
    }
    if (!fiber.started) continue;
    fiber.quit = true;
    fiber.worker = nullptr;
    fiber.handoff = Handoff{&here, Handoff::Action::None, nullptr};
    san_start_switch(here.san, fiber.san);
    boost::context::fiber finished = std::move(fiber.context).resume();
    // The fiber returned from its entry; `finished` is empty and its stack is ours again.
    san_finish_switch(here.san, nullptr);
    san_tsan_enter(here.san);
    san_destroy(fiber.san);
    fiber.started = false;
  }
  return suspended;
}

long FiberPool::guard_page_owner(const void* address) const noexcept {
  const auto* p = static_cast<const unsigned char*>(address);
  if (p < region_ || p >= region_ + region_size_) return -1;
  const std::size_t offset = static_cast<std::size_t>(p - region_);
  const std::size_t stride = guard_size_ + stack_size_;
  if (offset % stride >= guard_size_) return -1;
  return static_cast<long>(offset / stride);
}

}  // namespace fiberjob::detail
