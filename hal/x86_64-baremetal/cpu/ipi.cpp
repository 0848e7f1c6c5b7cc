// Inter-processor interrupts: one fixed vector per kind, to the target's local APIC ID.

#include "cpu/percpu.hpp"
#include "cpu/vectors.hpp"
#include "devices/lapic.hpp"

#include <core/lib/panic.hpp>
#include <hal/cpu.hpp>
#include <hal/ipi.hpp>
#include <hal/irq.hpp>

namespace hal {

void send_ipi(uint32_t cpu, IpiKind kind) {
    if (cpu >= cpu_count() || static_cast<uint8_t>(kind) >= x86_vectors::kIpiCount) {
        core::panic("send_ipi: no such CPU or IPI kind");
    }
    x86_percpu::Block& target = x86_percpu::block(cpu);
    // Every core enters the kernel at once and records its APIC ID first thing; a sender can
    // only get here before that in the first instants of bring-up.
    while (!__atomic_load_n(&target.present, __ATOMIC_ACQUIRE)) {
        cpu_relax();
    }
    IrqFlags flags = irq_save();
    lapic::send_fixed(target.apic_id,
                      static_cast<uint8_t>(x86_vectors::kIpiBase + static_cast<uint8_t>(kind)));
    irq_restore(flags);
}

} // namespace hal
