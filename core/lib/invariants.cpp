#include <core/invariants.hpp>
#include <core/mm/heap.hpp>
#include <core/mm/physical_memory.hpp>
#include <core/sched/scheduler.hpp>

namespace core {

InvariantReport& InvariantReport::fail(const char* what) {
    if (m_broken) {
        m_sealed = true; // keep the first report whole
        return *this;
    }
    m_broken = true;
    return add(what);
}

InvariantReport& InvariantReport::add(const char* s) {
    if (!m_sealed) {
        m_line.str(s);
        m_line.terminate('\0');
    }
    return *this;
}

InvariantReport& InvariantReport::add(uint64_t n) {
    if (!m_sealed) {
        m_line.dec(n);
        m_line.terminate('\0');
    }
    return *this;
}

bool check_invariants(InvariantReport& report) {
    mm::FrameAllocator& frames = mm::frames();
    if (frames.ready()) {
        if (!frames.quiescent()) {
            report.skip();
        } else if (!frames.accounting_holds()) {
            report.fail("frames: free + used + reserved is not the total, or a CPU's cache "
                        "disagrees with the counters");
        }
    }
    sched::check_invariants(report);
    mm::Heap& heap = mm::heap();
    if (heap.ready()) {
        if (!heap.quiescent()) {
            report.skip();
        } else {
            report.did(heap.bytes_from_frames_hint() / 4096); // the audit walks every page
            if (!heap.audit_unlocked()) {
                report.fail("heap: the chunks, slabs and per-CPU lists disagree with the "
                            "counters");
            }
        }
    }
    return !report.broken();
}

} // namespace core
