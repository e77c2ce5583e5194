#pragma once
// Counts of the global operator new's calls, kept by the replacement in count_allocations.cpp
// (link that file into the test binary; not available in TSan builds).

namespace fiberjob::test {

/// Calls to the global operator new so far, by all threads.
long allocations_total() noexcept;

/// Calls to the global operator new made by the calling thread so far.
long allocations_on_this_thread() noexcept;

}  // namespace fiberjob::test
