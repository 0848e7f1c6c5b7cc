// Fault injection: the kernel's fault points fail (hal::inject_fault), and the interrupt
// model's timers come late and its IPIs late or twice, as often as the machine's FaultRates
// say. The draws come from a generator of their own, apart from the schedule's, and a rate of
// zero draws nothing; every fault that strikes is logged as an event and traced.

#include <hal_sim/machine.hpp>
#include <hal_sim/seconds.hpp>

#include <string>

namespace hal_sim {

bool FaultRates::any() const {
    return frame_alloc > 0 || heap_alloc > 0 || timer_late > 0 || ipi_delay > 0 ||
           ipi_duplicate > 0;
}

bool Machine::inject_fault(hal::FaultPoint point) {
    double rate = 0;
    const char* name = "unknown";
    switch (point) {
    case hal::FaultPoint::FrameAlloc:
        rate = m_config.faults.frame_alloc;
        name = "frame_alloc";
        break;
    case hal::FaultPoint::HeapAlloc:
        rate = m_config.faults.heap_alloc;
        name = "heap_alloc";
        break;
    }
    if (!m_fault_rng.chance(rate)) {
        return false;
    }
    log_event(std::string("fault: ") + name + ": the operation fails");
    return true;
}

uint64_t Machine::fault_timer_late(uint64_t deadline_ns) {
    // NOTE: disarming (UINT64_MAX) is not a timer that can come late.
    if (deadline_ns == SimCpu::kNever || !m_fault_rng.chance(m_config.faults.timer_late)) {
        return deadline_ns;
    }
    uint64_t late = 1 + m_fault_rng.below(m_config.faults.late_max_ns);
    log_event("fault: timer_late: the timer for " + seconds(deadline_ns) + " comes " +
              std::to_string(late) + " ns late");
    return deadline_ns > SimCpu::kNever - late ? SimCpu::kNever - 1 : deadline_ns + late;
}

uint64_t Machine::fault_ipi_delay(uint32_t target) {
    if (!m_fault_rng.chance(m_config.faults.ipi_delay)) {
        return 0;
    }
    uint64_t late = 1 + m_fault_rng.below(m_config.faults.late_max_ns);
    log_event("fault: ipi_delay: the IPI to cpu " + std::to_string(target) + " comes " +
              std::to_string(late) + " ns late");
    return late;
}

bool Machine::fault_ipi_duplicate(uint32_t target) {
    if (!m_fault_rng.chance(m_config.faults.ipi_duplicate)) {
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
