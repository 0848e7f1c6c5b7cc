#pragma once

// Time: the TSC as the clock (hal::now_ns), the local APIC timer as the one-shot timer
// (hal::timer_arm), both calibrated once against the PIT.

#include <stdint.h>

namespace x86_time {

// On the bootstrap CPU, interrupts off, its local APIC set up: measures the TSC's frequency
// against PIT channel 2 and the APIC timer's against the TSC, and starts the clock at zero.
// The other CPUs use the same figures (QEMU and current hardware run every TSC and APIC timer
// at one rate). False if the measurement makes no sense.
bool calibrate();

uint64_t tsc_hz();
uint64_t apic_timer_hz();

// The timer interrupt (x86_vectors::kTimer), after EOI: calls core::on_timer() if the
// calling CPU's deadline has come, or re-arms for what is left of it.
void on_timer_interrupt();

} // namespace x86_time
