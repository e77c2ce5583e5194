#pragma once
/// \file
/// Waiting on a counter with a callback: the building block of adapters to other asynchronous
/// frameworks (fiberjob/asio.hpp). Internal.

#include <exception>

#include "fiberjob/counter.hpp"
#include "fiberjob/detail/wait_node.hpp"

namespace fiberjob::detail {

/// Links `node` (its kind set to Callback; `node.callback` and `node.callback_context` (the
/// callback's context) set by the caller) into `counter`'s wait list. `node.callback(node)`
/// runs once on the thread that brings the counter to zero — possibly this one, before this
/// returns. It must be short and must not block; it must call wait_for_linker(node) before
/// letting the waiter go on. Returns false, linking nothing and calling nothing, when the
/// counter is already zero. Thread-safety: any thread. Allocation: none.
bool link_callback(Counter& counter, WaitNode& node) noexcept;

/// Inside a callback: waits until the linker's last access to the counter is over (almost
/// always at once), after which the counter may be destroyed.
void wait_for_linker(const WaitNode& node) noexcept;

/// After the counter reached zero: its kept exception (nullptr if none), marked as delivered.
/// Allocates nothing (safe in a callback). Inside a callback the counter may already be
/// destroyed (its last signal returned): call this there only when `node.error_kept` is set
/// (the drain saw an exception kept, so the counter must still be alive); else there is none.
std::exception_ptr take_exception(Counter& counter) noexcept;

}  // namespace fiberjob::detail
