// Interrupts: each CPU's one-shot timer and its queue of IPIs, and their delivery to the
// kernel's handlers whenever a CPU with interrupts on has one due: at a preemption point, as
// it turns interrupts back on, arms its timer or sends itself an IPI. The executor keeps each
// CPU's next_event_ns (update_next_event) to resume an idle CPU when its next one is due.

#include <hal_sim/machine.hpp>
#include <hal_sim/race.hpp>

#include <core/user/process.hpp>

#include <algorithm>
#include <string>

namespace hal_sim {

void deliver_pending_now() {
    race::SimulatorCode sim; // from the kernel's irq_restore(): hal/hal.cpp says why
    Machine::current()->deliver_pending();
}

void Machine::deliver_pending() {
    if (m_borrowed) {
        return;
    }
    for (;;) {
        SimCpu& c = *m_current;
        if (!c.irq_enabled || c.next_event_ns > c.clock_ns) {
            return;
        }
        bool timer = c.timer_deadline_ns <= c.clock_ns &&
                     (c.ipis.empty() || c.timer_deadline_ns <= c.ipis.front().at_ns);
        hal::IpiKind kind = hal::IpiKind::Reschedule;
        if (timer) {
            c.timer_deadline_ns = SimCpu::kNever;
        } else {
            kind = c.ipis.front().kind;
            c.ipis.erase(c.ipis.begin());
        }
        update_next_event(c);
        // Interrupt entry: interrupts off until the handler returns (iret), and from user
        // mode into the kernel (a user program's compute is interrupted as ring 3 is).
        c.irq_enabled = false;
        bool from_user = c.user_mode;
        c.user_mode = false;
        c.clock_ns += m_config.costs.interrupt;
        {
            race::KernelCode kernel;
            if (timer) {
                m_config.kernel.on_timer();
            } else {
                m_config.kernel.on_ipi(kind);
            }
            // Back to user mode: as the machine's interrupt exit, a thread of a process that
            // is ending ends here instead (it does not come back).
            if (from_user) {
                core::user::on_return_to_user();
            }
        }
        // NOTE: the handler may have switched threads; this runs when the interrupted
        // thread is resumed, on whatever CPU that is.
        m_current->irq_enabled = true;
        m_current->user_mode = from_user;
    }
}

void Machine::wait_for_interrupt() {
    SimCpu& c = *m_current;
    c.spinning = false;
    bool was_enabled = c.irq_enabled;
    // STI; HLT: the CPU sleeps with interrupts enabled until one arrives.
    c.irq_enabled = true;
    if (c.next_event_ns > c.clock_ns) {
        c.state = SimCpu::State::Idle;
    }
    preemption_point();
    m_current->irq_enabled = was_enabled;
}

void Machine::timer_arm(uint64_t deadline_ns) {
    SimCpu& c = *m_current;
    deadline_ns = fault_timer_late(deadline_ns);
    // Under random, a timer interrupt's latency varies, as a real one's does (tens of ns to a
    // microsecond): otherwise every CPU's tick comes at the same instant for ever, since every
    // handler costs the same, and their handlers collide at every tick as real ones do not.
    if (m_config.schedule.kind == Schedule::Kind::Random && deadline_ns != SimCpu::kNever) {
        deadline_ns += m_sync_rng.below(Schedule::kTimerJitterNs);
    }
    // Under input, the latency is the input's choice, for the next timer armed.
    if (m_armed.timer_latency_ns != 0 && deadline_ns != SimCpu::kNever) {
        deadline_ns += m_armed.timer_latency_ns;
        m_armed.timer_latency_ns = 0;
    }
    c.timer_deadline_ns = deadline_ns;
    update_next_event(c);
    if (c.irq_enabled) {
        deliver_pending();
    }
}

void Machine::send_ipi(uint32_t target, hal::IpiKind kind) {
    SimCpu& from = *m_current;
    if (target >= m_cpus.size()) {
        stop(Verdict::Panic, "cpu " + std::to_string(from.index) + " sent an IPI to cpu " +
                                 std::to_string(target) + ", which does not exist");
        preemption_point();
        return;
    }
    uint64_t at = from.clock_ns + m_config.costs.ipi_latency + fault_ipi_delay(target);
    SimCpu& to = *m_cpus[target];
    auto insert = [&](uint64_t when) {
        auto it = std::upper_bound(to.ipis.begin(), to.ipis.end(), when,
                                   [](uint64_t t, const PendingIpi& p) { return t < p.at_ns; });
        to.ipis.insert(it, PendingIpi{when, kind});
    };
    insert(at);
    if (fault_ipi_duplicate(target)) {
        insert(at + m_config.costs.ipi_latency);
    }
    update_next_event(to);
    if (&to == &from && from.irq_enabled) {
        deliver_pending();
    }
}

} // namespace hal_sim
