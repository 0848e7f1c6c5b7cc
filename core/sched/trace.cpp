#include <core/lib/atomic.hpp>
#include <core/mm/heap.hpp>
#include <core/mm/physical_memory.hpp>
#include <core/sched/trace.hpp>

#include <hal/trace.hpp>

namespace core::sched::trace {

namespace {

// The counters' last reported values; racy between CPUs on purpose (the worst case reports a
// value twice).
uint64_t s_free_frames = ~uint64_t{0};
uint64_t s_heap_bytes = ~uint64_t{0};

hal::TraceThread describe(const Thread& t, char state) {
    hal::TraceThread d;
    d.name = t.name;
    d.pid = pid(t);
    d.priority = t.link.priority;
    d.state = state;
    return d;
}

// Why a thread was switched away from, in ftrace's letters.
char state_letter(const Thread& t) {
    switch (atomic::load<atomic::acquire>(&t.state)) {
    case ThreadState::Blocked:
        return 'S';
    case ThreadState::Exited:
        return 'X';
    default:
        return 'R';
    }
}

void report(const char* name, uint64_t value, uint64_t* last) {
    if (atomic::exchange<atomic::relaxed>(last, value) != value) {
        hal::trace_counter(name, value);
    }
}

} // namespace

void switched(const Thread& prev, const Thread& next) {
    mm::FrameAllocator& frames = mm::frames();
    if (frames.ready()) {
        report("free_frames", frames.free_frames_hint(), &s_free_frames);
    }
    mm::Heap& heap = mm::heap();
    if (heap.ready()) {
        report("heap_bytes", heap.bytes_from_frames_hint(), &s_heap_bytes);
    }
    hal::trace_switch(describe(prev, prev.idle ? 'R' : state_letter(prev)), describe(next, 'R'));
}

void waking(const Thread& t, uint32_t cpu) {
    hal::trace_waking(describe(t, 'R'), cpu);
}

} // namespace core::sched::trace
