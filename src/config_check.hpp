#pragma once
// Config validation (config.cpp).

#include "fiberjob/config.hpp"

namespace fiberjob::detail {

/// Returns `config` with the stack size rounded up to the page size.
/// Errors: Error (InvalidConfig) naming the first field out of range.
Config validate_config(const Config& config);

}  // namespace fiberjob::detail
