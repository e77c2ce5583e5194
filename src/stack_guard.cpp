// SIGSEGV handler for fiber stack overflows. Everything the handler does is async-signal-safe
// and goes straight to the kernel: it reads a fixed array of atomics, writes with a raw
// write system call and restores the default action with a raw rt_sigaction system call. Raw
// system calls, not the libc wrappers: sanitizers intercept write, signal and sigaction, and
// ThreadSanitizer's interceptors take locks that a handler interrupting its runtime (or any
// thread holding them) can deadlock on.

#include "stack_guard.hpp"

#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <system_error>

#include "fiber_pool.hpp"

namespace fiberjob::detail {
namespace {

constexpr std::size_t kMaxPools = 64;
constexpr std::size_t kAltStackBytes = 64 * 1024;

/// Registered pools, nullptr = free slot. Register: release CAS, pairs with the signal
/// handler's acquire load (the pool's geometry is visible). Unregister: relaxed CAS.
std::atomic<const FiberPool*> g_pools[kMaxPools];
struct sigaction g_previous;
std::once_flag g_install_once;

/// The calling thread's alternate signal stack as install_alternate_signal_stack left it:
/// `ours` is the stack we mapped (nullptr when the thread's own one was big enough and kept),
/// `previous` the thread's setting before, restored by remove_alternate_signal_stack.
struct AltStack {
  void* ours = nullptr;
  stack_t previous{};
  bool installed = false;
};
thread_local AltStack t_alt_stack;

std::size_t length_of(const char* s) noexcept {
  std::size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}

void write_str(const char* s) noexcept {
  [[maybe_unused]] const long ignored = ::syscall(SYS_write, STDERR_FILENO, s, length_of(s));
}

void write_number(unsigned long value) noexcept {
  char buffer[24];
  char* p = buffer + sizeof buffer;
  *--p = '\0';
  do {
    *--p = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  write_str(p);
}

/// The kernel's struct sigaction (not glibc's): all zero is SIG_DFL with no flags and an empty
/// mask.
struct KernelSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  unsigned long mask;
};

/// SIG_DFL for SIGSEGV, straight to the kernel (see the file comment). Returning from the
/// handler re-executes the faulting access, which then kills the process by SIGSEGV (with a
/// core dump where enabled), as any unhandled segmentation fault does.
void restore_default_action() noexcept {
  KernelSigaction action{};
  ::syscall(SYS_rt_sigaction, SIGSEGV, &action, nullptr, sizeof action.mask);
}

void on_segv(int signal_number, siginfo_t* info, void* ucontext) {
  for (auto& slot : g_pools) {
    // acquire: pairs with the release store in register_guarded_pool (pool fully built).
    const FiberPool* pool = slot.load(std::memory_order_acquire);
    if (pool == nullptr) continue;
    const long owner = pool->guard_page_owner(info->si_addr);
    if (owner < 0) continue;
    write_str("fiberjob: fiber stack overflow in fiber #");
    write_number(static_cast<unsigned long>(owner));
    write_str(" of stack class '");
    write_str(pool->class_name());
    if (pool->stack_class() == 0) {
      write_str("': a job needed more than Config::fiber_stack_size = ");
      write_number(pool->stack_size());
      write_str(
          " bytes of stack. Raise Config::fiber_stack_size, spawn the job with a larger "
          "JobOptions::stack_class (Config::stack_classes), or move large locals off the "
          "stack.\n");
    } else {
      write_str("': a job needed more than Config::stack_classes[");
      write_number(static_cast<unsigned long>(pool->stack_class() - 1));
      write_str("].stack_size = ");
      write_number(pool->stack_size());
      write_str(" bytes of stack. Raise that stack_size, or move large locals off the stack.\n");
    }
    restore_default_action();  // return: the access faults again and the process dies
    return;
  }
  if ((g_previous.sa_flags & SA_SIGINFO) != 0 && g_previous.sa_sigaction != nullptr) {
    g_previous.sa_sigaction(signal_number, info, ucontext);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    g_previous.sa_handler(signal_number);
  } else {
    restore_default_action();  // default action on the re-executed access
  }
}

void install_handler() noexcept {
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_sigaction = &on_segv;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGSEGV, &action, &g_previous);
}

}  // namespace

void register_guarded_pool(const FiberPool* pool) noexcept {
  std::call_once(g_install_once, install_handler);
  for (auto& slot : g_pools) {
    const FiberPool* expected = nullptr;
    // release: pairs with the acquire load in on_segv.
    if (slot.compare_exchange_strong(expected, pool, std::memory_order_release,
                                     std::memory_order_relaxed)) {
      return;
    }
  }
  // More than kMaxPools live job systems: overflows of this one fault without the report.
}

void unregister_guarded_pool(const FiberPool* pool) noexcept {
  for (auto& slot : g_pools) {
    const FiberPool* expected = pool;
    // relaxed: the pool outlives this call; the handler only compares the pointer's range.
    if (slot.compare_exchange_strong(expected, nullptr, std::memory_order_relaxed)) return;
  }
}

void install_alternate_signal_stack() {
  AltStack& mine = t_alt_stack;
  stack_t current{};
  if (::sigaltstack(nullptr, &current) != 0) {
    throw std::system_error(errno, std::generic_category(), "fiberjob: sigaltstack failed");
  }
  // The thread has an alternate stack of its own (a crash reporter's, say) that is big enough
  // for the handler: keep it.
  if ((current.ss_flags & SS_DISABLE) == 0 && current.ss_size >= kAltStackBytes) {
    mine = AltStack{nullptr, current, true};
    return;
  }
  void* memory =
      ::mmap(nullptr, kAltStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (memory == MAP_FAILED) {
    throw std::system_error(errno, std::generic_category(),
                            "fiberjob: mmap of a worker's signal stack failed");
  }
  stack_t stack{};
  stack.ss_sp = memory;
  stack.ss_size = kAltStackBytes;
  if (::sigaltstack(&stack, nullptr) != 0) {
    const int error = errno;
    ::munmap(memory, kAltStackBytes);
    throw std::system_error(error, std::generic_category(), "fiberjob: sigaltstack failed");
  }
  mine = AltStack{memory, current, true};
}

void remove_alternate_signal_stack() noexcept {
  AltStack& mine = t_alt_stack;
  if (!mine.installed) return;
  if (mine.ours != nullptr) {
    // Give the thread its own setting back (its earlier stack, or none).
    stack_t previous = mine.previous;
    previous.ss_flags &= SS_DISABLE;  // SS_ONSTACK is a status, not a setting
    if ((previous.ss_flags & SS_DISABLE) != 0) {
      previous.ss_sp = nullptr;
      previous.ss_size = 0;
    }
    ::sigaltstack(&previous, nullptr);
    ::munmap(mine.ours, kAltStackBytes);
  }
  mine = AltStack{};
}

}  // namespace fiberjob::detail
