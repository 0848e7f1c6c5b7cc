#pragma once

/// @file
/// Time and the per-CPU one-shot timer.

#include <hal/types.hpp>

namespace hal {

/// Monotonic time in nanoseconds since boot, on the calling CPU's clock (virtual time in the
/// simulator). Any context.
uint64_t now_ns();

/// Arms the calling CPU's one-shot timer: core::on_timer() runs on this CPU, with interrupts
/// enabled at the point of delivery, once now_ns() >= deadline_ns. Re-arming replaces the
/// previous deadline; a deadline in the past fires as soon as interrupts allow; UINT64_MAX
/// disarms it.
void timer_arm(uint64_t deadline_ns);

} // namespace hal

// The backend's inline definitions of the hot functions, if it has any.
#include <hal_backend/inline.hpp>
