#pragma once
// ContextAccess: builds the Context a job receives.

#include "fiberjob/context.hpp"

namespace fiberjob::detail {

struct ContextAccess {
  static Context make(Fiber* fiber) noexcept { return Context(fiber); }
};

}  // namespace fiberjob::detail
