#include <core/cpu.hpp>
#include <core/irq_entry.hpp>

namespace core {

void on_timer() {
    if (Cpu* c = current_cpu()) {
        ++c->timer_interrupts;
    }
}

void on_ipi(hal::IpiKind) {
    if (Cpu* c = current_cpu()) {
        ++c->ipis;
    }
}

} // namespace core
