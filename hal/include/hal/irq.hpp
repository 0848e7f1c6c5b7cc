#pragma once

/// @file
/// Local interrupt state. The backend calls core::on_timer(), core::on_ipi(),
/// core::on_page_fault() and core::on_exception() from its interrupt entry points.

#include <hal/types.hpp>

namespace hal {

/// Disables interrupts on the calling CPU and returns the previous state. Any context.
/// Prefer core's InterruptGuard to calling this directly.
[[nodiscard]] IrqFlags irq_save();

/// Restores the state irq_save() returned. If that re-enables interrupts and one is pending,
/// it is delivered before this returns (in the simulator this is a preemption point).
void irq_restore(IrqFlags flags);

/// Enables interrupts on the calling CPU; a pending one is delivered before this returns. For
/// a new thread's entry (contexts start with interrupts off). Not on a 1 KiB bring-up stack.
void irq_enable();

/// Whether interrupts are enabled on the calling CPU.
bool irq_enabled();

} // namespace hal

// The backend's inline definitions of the hot functions, if it has any (last, as the design
// says: after the declarations above).
#include <hal_backend/inline.hpp>
