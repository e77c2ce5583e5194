#pragma once
// ContextAccess: builds the one Context of a Scheduler.

#include "fiberjob/context.hpp"

namespace fiberjob::detail {

struct ContextAccess {
  static Context make(Scheduler& scheduler) noexcept { return Context(scheduler); }
  static Scheduler& scheduler(Context& context) noexcept { return context.scheduler_; }
};

}  // namespace fiberjob::detail
