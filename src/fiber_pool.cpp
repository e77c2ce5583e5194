// FiberPool: guard-paged stacks in chunks that grow on demand, two tagged Treiber free stacks,
// trimming of cold stacks, lazy construction and orderly retirement of Boost.Context fibers.

#include "fiber_pool.hpp"
#include "platform/fence.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <new>
#include <string>
#include <system_error>
#include <utility>

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

/// Bytes below a released fiber's live_frames_floor that trimming leaves alone: the frames of
/// the switch away from the dispatch loop and the registers Boost.Context saved below them
/// (a few hundred bytes; generous for sanitizer builds' larger frames).
constexpr std::size_t kLiveFramesMargin = 8 * 1024;

}  // namespace

FiberPool::FiberPool(Scheduler& scheduler, std::uint32_t warm_count, std::uint32_t max_count,
                     std::size_t stack_size, FiberEntry entry, std::uint8_t stack_class,
                     std::string class_name)
    : scheduler_(scheduler),
      warm_count_(warm_count),
      max_count_(max_count),
      stack_size_(stack_size),
      entry_(entry),
      stack_class_(stack_class),
      class_name_(std::move(class_name)) {
  page_size_ = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  guard_size_ = (kGuardBytes + page_size_ - 1) / page_size_ * page_size_;
  chunk_slots_ = (max_count_ + kChunkFibers - 1) / kChunkFibers;
  chunks_ = std::make_unique<std::atomic<Chunk*>[]>(chunk_slots_);
  while (created_.load(std::memory_order_relaxed) < warm_count_) {  // relaxed: no thread yet
    Fiber* first = add_chunk();
    if (first != nullptr) {
      push(first->index < warm_count_ ? warm_ : cold_, *first);
    } else {
      const int error = growth_error();
      free_chunks();
      throw std::system_error(
          error, std::generic_category(),
          "fiberjob: making the fiber stacks failed (Config::fiber_count = " +
              std::to_string(warm_count) +
              " x Config::fiber_stack_size = " + std::to_string(stack_size) +
              " bytes too large for the memory, or above the OS limit on mappings, "
              "vm.max_map_count)");
    }
  }
  register_guarded_pool(this);
}

FiberPool::~FiberPool() {
  unregister_guarded_pool(this);
  free_chunks();
}

void FiberPool::free_chunks() noexcept {
  for (std::uint32_t c = 0; c < chunk_slots_; ++c) {
    Chunk* chunk = chunks_[c].load(std::memory_order_relaxed);  // relaxed: workers stopped
    if (chunk == nullptr) break;
    for (std::uint32_t i = 0; i < chunk->count; ++i) {
      // A fiber still suspended holds a live Boost.Context continuation: destroying it would
      // unwind the job's stack through forced_unwind. It is left alone (reported by
      // retire_all).
      if (state_of(chunk->fibers[i]) != FiberState::Suspended) chunk->fibers[i].~Fiber();
    }
    ::operator delete (chunk->fibers, std::align_val_t{alignof(Fiber)});
    san_clear_stack_memory(chunk->region, chunk->region_size);  // for the next user of the range
    ::munmap(chunk->region, chunk->region_size);
    delete chunk;
    chunks_[c].store(nullptr, std::memory_order_relaxed);  // relaxed: as above
  }
}

Fiber* FiberPool::add_chunk() noexcept {
  // relaxed: only the grower (under grow_mutex_, or the constructor) writes created_.
  const std::uint32_t first = created_.load(std::memory_order_relaxed);
  if (first >= max_count_) return nullptr;
  const std::uint32_t count = std::min(kChunkFibers, max_count_ - first);
  const std::size_t stride = guard_size_ + stack_size_;
  const std::size_t region_size = stride * count;
  void* region = ::mmap(nullptr, region_size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  if (region == MAP_FAILED) {
    growth_error_.store(errno, std::memory_order_relaxed);  // relaxed: see growth_error_
    return nullptr;
  }
  auto* bytes = static_cast<unsigned char*>(region);
  san_clear_stack_memory(bytes, region_size);
  for (std::uint32_t i = 0; i < count; ++i) {
    if (::mprotect(bytes + i * stride, guard_size_, PROT_NONE) != 0) {
      growth_error_.store(errno, std::memory_order_relaxed);  // relaxed: see growth_error_
      ::munmap(region, region_size);
      return nullptr;
    }
  }
  Chunk* chunk = nullptr;
  void* records = nullptr;
  try {  // the plain forms: a program that replaces operator new replaces these
    chunk = new Chunk{bytes, region_size, first, count, nullptr};
    records = ::operator new (sizeof(Fiber) * count, std::align_val_t{alignof(Fiber)});
  } catch (const std::bad_alloc&) {
    growth_error_.store(ENOMEM, std::memory_order_relaxed);  // relaxed: see growth_error_
    delete chunk;
    ::munmap(region, region_size);
    return nullptr;
  }
  chunk->fibers = static_cast<Fiber*>(records);
  for (std::uint32_t i = 0; i < count; ++i) {
    Fiber* fiber = ::new (static_cast<void*>(&chunk->fibers[i])) Fiber();
    fiber->index = first + i;
    fiber->scheduler = &scheduler_;
    fiber->stack_bottom = bytes + i * stride + guard_size_;
    fiber->stack_size = stack_size_;
    fiber->stack_class = stack_class_;
    san_set_bounds(fiber->san, fiber->stack_bottom, fiber->stack_size);
  }
  // release: pairs with the acquire loads in at() and created(): whoever sees the chunk (or
  // the new count) sees its fibers built.
  chunks_[first / kChunkFibers].store(chunk, std::memory_order_release);
  created_.store(first + count, std::memory_order_release);
  // All but the first into the free lists, in reverse so that the lowest index is handed out
  // first (reuse keeps the hot stacks warm). Each push is a release CAS that publishes the
  // fiber. The first goes to the caller.
  for (std::uint32_t i = count; i-- > 1;) {
    Fiber& fiber = chunk->fibers[i];
    push(fiber.index < warm_count_ ? warm_ : cold_, fiber);
  }
  return &chunk->fibers[0];
}

Fiber* FiberPool::grow() noexcept {
  const std::lock_guard<std::mutex> lock(grow_mutex_);
  // Another thread may have grown the pool, or fibers came back, while we waited for the lock.
  if (Fiber* fiber = pop(warm_)) return fiber;
  if (Fiber* fiber = pop(cold_)) return fiber;
  // The new chunk's first fiber is ours: other threads may take the rest from the free lists
  // before we could pop one (a grower preempted there saw "exhausted" with fibers to spare).
  return add_chunk();
}

Fiber* FiberPool::pop(FreeList& list) noexcept {
  // acquire: pairs with the release CAS in push(), so the popped fiber's `context` and
  // `next_free` written by the fiber that released it are visible.
  std::uint64_t head = list.head.load(std::memory_order_acquire);
  for (;;) {
    const std::uint32_t index_plus_one = index_of(head);
    if (index_plus_one == 0) return nullptr;
    Fiber* fiber = &at(index_plus_one - 1);
    // relaxed: ordered by the acquire that read `head`; a stale value fails the tagged CAS.
    const std::uint32_t next = fiber->next_free.load(std::memory_order_relaxed);
    // acquire on success and failure: same pairing as the load above.
    if (list.head.compare_exchange_weak(head, pack(tag_of(head) + 1, next),
                                        std::memory_order_acquire, std::memory_order_acquire)) {
      return fiber;
    }
  }
}

void FiberPool::push(FreeList& list, Fiber& fiber) noexcept {
  // relaxed: only a first guess for the CAS.
  std::uint64_t head = list.head.load(std::memory_order_relaxed);
  for (;;) {
    // relaxed: published by the release CAS below.
    fiber.next_free.store(index_of(head), std::memory_order_relaxed);
    // release: pairs with the acquire in pop(); publishes the fiber's state and context.
    if (list.head.compare_exchange_weak(head, pack(tag_of(head) + 1, fiber.index + 1),
                                        std::memory_order_release, std::memory_order_relaxed)) {
      return;
    }
  }
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

Fiber* FiberPool::acquire() noexcept {
  Fiber* fiber = pop(warm_);
  if (fiber == nullptr) [[unlikely]] {
    fiber = pop(cold_);
    if (fiber == nullptr) fiber = grow();
    if (fiber == nullptr) return nullptr;
  }
  // relaxed: statistics only.
  const std::uint32_t used = in_use_.fetch_add(1, std::memory_order_relaxed) + 1;
  std::uint32_t high = high_water_.load(std::memory_order_relaxed);
  while (used > high && !high_water_.compare_exchange_weak(high, used, std::memory_order_relaxed)) {
  }
  set_state(*fiber, FiberState::Running);
  // Constructing a Boost.Context fiber only places its entry frame on the preallocated stack;
  // it allocates nothing, so it cannot throw here.
  if (!fiber->started) construct_context(*fiber);
  return fiber;
}

void FiberPool::trim(Fiber& fiber) noexcept {
  const auto bottom = reinterpret_cast<std::uintptr_t>(fiber.stack_bottom);
  const auto floor = reinterpret_cast<std::uintptr_t>(fiber.live_frames_floor);
  if (floor < bottom + kLiveFramesMargin + page_size_) return;  // nothing worth a system call
  const std::uintptr_t end = (floor - kLiveFramesMargin) / page_size_ * page_size_;
  // Pages read as zero afterwards and cost no memory until touched again. A failure only
  // keeps the pages: nothing to report.
  ::madvise(fiber.stack_bottom, end - bottom, MADV_DONTNEED);
}

void FiberPool::release(Fiber* fiber, Worker* worker) noexcept {
  set_state(*fiber, FiberState::Pooled);
  fiber->pending = Job{};
  fiber->node.next = nullptr;
  in_use_.fetch_sub(1, std::memory_order_relaxed);  // relaxed: statistics only
  if (fiber->index < warm_count_) {
    push(warm_, *fiber);
  } else {
    trim(*fiber);
    push(cold_, *fiber);
  }
  if (stack_class_ != 0) {
    // seq_cst fence: pairs with the one in park_job (freed, then look for a kept job).
    // Model-checked: tests/model/class_model.cpp.
    seq_cst_fence();
    // relaxed: ordered by the fences (see parked_count_).
    if (parked_count_.load(std::memory_order_relaxed) != 0) [[unlikely]]
      unpark_one(worker);
  }
}

bool FiberPool::may_have_free_fiber() const noexcept {
  // relaxed: hints, ordered where it matters by the fences of park_job and release.
  return index_of(warm_.head.load(std::memory_order_relaxed)) != 0 ||
         index_of(cold_.head.load(std::memory_order_relaxed)) != 0 ||
         created_.load(std::memory_order_relaxed) < max_count_;
}

std::uint32_t FiberPool::retire_all() noexcept {
  Fiber here;
  set_state(here, FiberState::Native);
  san_adopt_thread(here.san);
  std::uint32_t suspended = 0;
  const std::uint32_t count = created();
  for (std::uint32_t i = 0; i < count; ++i) {
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
  const std::size_t stride = guard_size_ + stack_size_;
  for (std::uint32_t c = 0; c < chunk_slots_; ++c) {
    // acquire: pairs with the release store in add_chunk (the chunk is fully built).
    const Chunk* chunk = chunks_[c].load(std::memory_order_acquire);
    if (chunk == nullptr) break;
    if (p < chunk->region || p >= chunk->region + chunk->region_size) continue;
    const std::size_t offset = static_cast<std::size_t>(p - chunk->region);
    if (offset % stride >= guard_size_) return -1;
    return static_cast<long>(chunk->first + offset / stride);
  }
  return -1;
}

}  // namespace fiberjob::detail
