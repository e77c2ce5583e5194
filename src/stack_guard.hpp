#pragma once
// Turns a fault in a fiber stack's guard page into a clear "fiber stack overflow" report.

namespace fiberjob::detail {

class FiberPool;

/// Makes `pool`'s guard pages known to the SIGSEGV handler (installed once per process, on an
/// alternate signal stack, chaining to the previous handler for every other fault).
void register_guarded_pool(const FiberPool* pool) noexcept;
void unregister_guarded_pool(const FiberPool* pool) noexcept;

/// Gives the calling (worker) thread an alternate signal stack, so that the handler can run
/// when the fiber stack is exhausted. Paired with remove_alternate_signal_stack on the same
/// thread.
void install_alternate_signal_stack();
void remove_alternate_signal_stack() noexcept;

}  // namespace fiberjob::detail
