#pragma once

/// @file
/// Inter-processor interrupts.

#include <hal/types.hpp>

namespace hal {

/// Sends `kind` to CPU `cpu`, whose core::on_ipi() runs when its interrupts are enabled.
/// Sending to the calling CPU is allowed. Any context; does not wait for delivery.
void send_ipi(uint32_t cpu, IpiKind kind);

} // namespace hal
