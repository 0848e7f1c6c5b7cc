// Local interrupt state: RFLAGS.IF.

#include "cpu/x86.hpp"

#include <hal/irq.hpp>

namespace hal {

IrqFlags irq_save() {
    IrqFlags flags;
    asm volatile("pushfq; popq %0; cli" : "=r"(flags) : : "memory");
    return flags;
}

void irq_restore(IrqFlags flags) {
    asm volatile("pushq %0; popfq" : : "r"(flags) : "memory", "cc");
}

bool irq_enabled() {
    return (x86::read_rflags() & x86::kRflagsIf) != 0;
}

} // namespace hal
