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

/// A free-running count for measuring what the kernel does over a span on one machine, read
/// without serialising: the time-stamp counter on bare metal (RDTSC; under QEMU's TCG it
/// follows the host's clock, not guest instructions), the calling CPU's virtual nanoseconds in
/// the simulator. Not a clock: now_ns() is. Any context.
uint64_t cycle_count();

} // namespace hal

// The backend's inline definitions of the hot functions, if it has any.
#include <hal_backend/inline.hpp>
