#include <core/cpu.hpp>
#include <core/irq_entry.hpp>
#include <core/sched/scheduler.hpp>

#include <hal/cpu.hpp>

namespace core {

void on_timer() {
    if (Cpu* c = current_cpu()) {
        ++c->timer_interrupts;
    }
    sched::on_tick();
}

void on_ipi(hal::IpiKind kind) {
    if (Cpu* c = current_cpu()) {
        ++c->ipis;
    }
    switch (kind) {
    case hal::IpiKind::Reschedule:
        sched::on_reschedule_ipi();
        break;
    case hal::IpiKind::Halt:
        for (;;) {
            hal::wait_for_interrupt();
        }
    }
}

} // namespace core
