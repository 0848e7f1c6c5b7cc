#pragma once

// What the backends call when an interrupt arrives. Each runs on the interrupted CPU with
// interrupts disabled, and may switch threads before it returns.

#include <hal/types.hpp>

namespace core {

// The CPU's one-shot timer (hal::timer_arm) fired.
void on_timer();

// Another CPU sent `kind` (hal::send_ipi).
void on_ipi(hal::IpiKind kind);

// An access to `address` faulted (#PF); `error_code` is the architectural one (bit 0 present,
// 1 write, 2 user, 3 reserved bit, 4 instruction fetch). Returns if the fault was resolved and
// the access may be retried; otherwise reports it (naming a kernel stack overflow as such) and
// panics. Defined in core/mm/page_fault.cpp.
void on_page_fault(hal::VirtAddr address, uint32_t error_code);

} // namespace core
