#pragma once

// What the backends call when an interrupt arrives. Each runs on the interrupted CPU with
// interrupts disabled, and may switch threads before it returns.

#include <hal/types.hpp>

namespace core {

// The CPU's one-shot timer (hal::timer_arm) fired.
void on_timer();

// Another CPU sent `kind` (hal::send_ipi).
void on_ipi(hal::IpiKind kind);

} // namespace core
