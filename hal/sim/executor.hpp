#pragma once

// What every context switch asks the executor, inline: whether the switching CPU would be
// resumed next anyway, so that it may go on without a preemption point. The rest of the
// executor is in executor.cpp.

#include <hal_sim/machine.hpp>

#include <algorithm>

namespace hal_sim {

inline bool Machine::still_first(const SimCpu& c) {
    // NOTE: every switch asks. Once the answer is yes, it stays yes until the running CPU's
    // clock reaches the first of the children's ready times and the run's end, or the heap
    // changes (which resets m_first_until).
    if (c.clock_ns < m_first_until) {
        return true;
    }
    // The executor would pick this CPU again at once when it is still at the top of the heap
    // and strictly ahead of both children (a tie is the seeded generator's to break), and the
    // run is not about to end.
    if (m_borrowed || m_stopped || heap_pos(c) != 0 || c.clock_ns >= m_clock_end) {
        return false;
    }
    uint64_t until = m_clock_end;
    for (size_t child = 1; child <= 2 && child < m_heap.size(); ++child) {
        until = std::min(until, heap_ready(child));
    }
    if (c.clock_ns >= until) {
        return false;
    }
    m_first_until = until;
    return true;
}

} // namespace hal_sim
