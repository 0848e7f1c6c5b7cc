#include <core/irq_entry.hpp>
#include <core/mm/shootdown.hpp>
#include <core/sched/scheduler.hpp>

#include <hal/cpu.hpp>

namespace core {

void on_timer() {
    sched::on_tick();
}

void on_ipi(hal::IpiKind kind) {
    switch (kind) {
    case hal::IpiKind::Reschedule:
        sched::on_reschedule_ipi();
        break;
    case hal::IpiKind::FlushTlb:
        mm::on_tlb_shootdown_ipi();
        break;
    case hal::IpiKind::Halt:
        for (;;) {
            hal::wait_for_interrupt();
        }
    }
}

} // namespace core
