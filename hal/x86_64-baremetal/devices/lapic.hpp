#pragma once

// The local APIC in xAPIC mode: end of interrupt, the one-shot timer and inter-processor
// interrupts. Each CPU reaches its MMIO page through the loader's identity map until it loads
// the kernel address space, and through the kernel's uncached mapping of it (a device window,
// hal::device_windows()) from then on.

#include <stdint.h>

namespace lapic {

// On the bootstrap CPU, before any other function here: finds the local APIC. False if it is
// disabled, in x2APIC mode or above 4 GiB (the identity map's end), which Duet does not drive.
bool probe();

// Whether the calling CPU can reach its local APIC (init_this_cpu() has run on it).
bool ready();

// The registers' physical address, once probe() has found them.
uint64_t physical_base();

// The kernel address space maps the registers at `va` (bootstrap CPU, before any CPU loads
// it); use_kernel_mapping() switches the calling CPU to that address (hal::load_page_table()).
void set_kernel_mapping(uint64_t va);
void use_kernel_mapping();

// Sets up the calling CPU's local APIC: software-enabled with the spurious vector, every
// interrupt priority accepted, the timer one-shot on x86_vectors::kTimer and stopped.
void init_this_cpu();

// The calling CPU's local APIC ID.
uint32_t id();

void eoi();

// The timer: counts down from `ticks` (at least 1) and interrupts at zero; 0 stops it.
void timer_start(uint32_t ticks);
uint32_t timer_count();
// The timer's counting rate is the APIC clock divided by this (the divide register's setting).
inline constexpr uint32_t kTimerDivisor = 16;

// A fixed interrupt with `vector` to the CPU whose local APIC ID is `apic_id`, and an NMI.
// Interrupts must be off (the two ICR writes must not be split by a handler that sends too).
void send_fixed(uint32_t apic_id, uint8_t vector);
void send_nmi(uint32_t apic_id);

} // namespace lapic
