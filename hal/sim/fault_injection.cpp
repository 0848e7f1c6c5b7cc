// Fault injection: the kernel's fault points fail (hal::inject_fault), and the interrupt
// model's timers come late and its IPIs late or twice, as often as the machine's FaultRates
// say. The draws come from a generator of their own, apart from the schedule's, and a rate of
// zero draws nothing; every fault that strikes is logged as an event and traced. Under an
// input schedule nothing is drawn: a fault whose rate is above zero strikes where the input
// armed it (hal_sim/schedule.hpp).

#include <hal_sim/machine.hpp>
#include <hal_sim/seconds.hpp>

#include <algorithm>
#include <string>

namespace hal_sim {

bool FaultRates::any() const {
    return frame_alloc > 0 || heap_alloc > 0 || timer_late > 0 || ipi_delay > 0 ||
           ipi_duplicate > 0;
}

bool Machine::fault_strikes(double rate, bool* armed) {
    if (m_config.schedule.kind != Schedule::Kind::Input) {
        return m_fault_rng.chance(rate);
    }
    if (rate <= 0 || !*armed) {
        return false;
    }
    *armed = false;
    return true;
}

uint64_t Machine::fault_lateness(uint64_t armed_ns) {
    if (m_config.schedule.kind != Schedule::Kind::Input) {
        return 1 + m_fault_rng.below(m_config.faults.late_max_ns);
    }
    return std::max<uint64_t>(1, std::min(armed_ns, m_config.faults.late_max_ns));
}

bool Machine::inject_fault(hal::FaultPoint point) {
    double rate = 0;
    const char* name = "unknown";
    bool* armed = nullptr;
    switch (point) {
    case hal::FaultPoint::FrameAlloc:
        rate = m_config.faults.frame_alloc;
        name = "frame_alloc";
        armed = &m_armed.frame_alloc;
        break;
    case hal::FaultPoint::HeapAlloc:
        rate = m_config.faults.heap_alloc;
        name = "heap_alloc";
        armed = &m_armed.heap_alloc;
        break;
    }
    if (armed == nullptr || !fault_strikes(rate, armed)) {
        return false;
    }
    log_event(std::string("fault: ") + name + ": the operation fails");
    return true;
}

uint64_t Machine::fault_timer_late(uint64_t deadline_ns) {
    // NOTE: disarming (UINT64_MAX) is not a timer that can come late.
    if (deadline_ns == SimCpu::kNever ||
        !fault_strikes(m_config.faults.timer_late, &m_armed.timer_late)) {
        return deadline_ns;
    }
    uint64_t late = fault_lateness(m_armed.timer_late_ns);
    log_event("fault: timer_late: the timer for " + seconds(deadline_ns) + " comes " +
              std::to_string(late) + " ns late");
    return deadline_ns > SimCpu::kNever - late ? SimCpu::kNever - 1 : deadline_ns + late;
}

uint64_t Machine::fault_ipi_delay(uint32_t target) {
    if (!fault_strikes(m_config.faults.ipi_delay, &m_armed.ipi_delay)) {
        return 0;
    }
    uint64_t late = fault_lateness(m_armed.ipi_delay_ns);
    log_event("fault: ipi_delay: the IPI to cpu " + std::to_string(target) + " comes " +
              std::to_string(late) + " ns late");
    return late;
}

bool Machine::fault_ipi_duplicate(uint32_t target) {
    if (!fault_strikes(m_config.faults.ipi_duplicate, &m_armed.ipi_duplicate)) {
        return false;
    }
    log_event("fault: ipi_duplicate: the IPI to cpu " + std::to_string(target) +
              " is delivered twice");
    return true;
}

void Machine::log_event(const std::string& line) {
    std::string tagged = line;
    if (m_current != nullptr) {
        tagged = "[" + seconds(m_current->clock_ns) + " cpu " + std::to_string(m_current->index) +
                 "] " + line;
    }
    m_events.push_back(tagged);
    if (m_event_sink) {
        m_event_sink(tagged);
    }
    // Every event the machine logs is an injected fault: an instant in the trace.
    TraceRecord r;
    r.track = "faults";
    r.name = line;
    trace(r);
}

} // namespace hal_sim
