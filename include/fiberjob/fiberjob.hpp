#pragma once
/// \file
/// Umbrella header: everything a user of fiberjob needs.

#include "fiberjob/attached_worker.hpp"
#include "fiberjob/awaiters.hpp"
#include "fiberjob/condition_variable.hpp"
#include "fiberjob/config.hpp"
#include "fiberjob/context.hpp"
#include "fiberjob/counter.hpp"
#include "fiberjob/counter_wait.hpp"
#include "fiberjob/diagnostics.hpp"
#include "fiberjob/error.hpp"
#include "fiberjob/event.hpp"
#include "fiberjob/frame_allocator.hpp"
#include "fiberjob/job_system.hpp"
#include "fiberjob/mutex.hpp"
#include "fiberjob/parallel_for.hpp"
#include "fiberjob/semaphore.hpp"
#include "fiberjob/stats.hpp"
#include "fiberjob/task.hpp"
#include "fiberjob/this_fiber.hpp"
#include "fiberjob/trace.hpp"
