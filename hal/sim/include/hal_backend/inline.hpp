#pragma once

// The simulator's hot HAL functions, inline (ARCHITECTURE.md allows it for these): interrupt
// state and CPU identity are a few loads and stores on the current simulated CPU, which every
// spinlock and every scheduler decision touches. The rest of the HAL is out of line in
// hal/sim/hal.cpp.

#include <hal/types.hpp>

namespace core {
struct Cpu;
}

namespace hal_sim {

// The part of a simulated CPU these functions touch (hal_sim::SimCpu derives from it).
struct FastCpu {
    uint32_t index = 0;
    bool irq_enabled = false;
    core::Cpu* cpu_data = nullptr;
    uint64_t clock_ns = 0;
    uint64_t next_event_ns = ~uint64_t{0};
    uint64_t irq_op_ns = 0; // the virtual cost of irq_save()/irq_restore()
};

// Whether the running machine's schedule stops at hal::sync_point()s (not under `coarse`, the
// default, which interleaves the CPUs at preemption points only).
extern bool g_sync_points;

// The CPU whose fiber runs (or that a test's CpuScope borrowed); null outside a machine.
extern FastCpu* g_current_cpu;

// Out of line: the current machine delivers what is due; the complaint about a HAL call
// outside any machine.
void deliver_pending_now();
void sync_point_now();
[[noreturn]] void no_current_cpu();

inline FastCpu& current_fast_cpu() {
    FastCpu* c = g_current_cpu;
    if (c == nullptr) [[unlikely]] {
        no_current_cpu();
    }
    return *c;
}

} // namespace hal_sim

namespace hal {

inline uint32_t cpu_index() {
    return hal_sim::current_fast_cpu().index;
}

inline core::Cpu* this_cpu() {
    return hal_sim::current_fast_cpu().cpu_data;
}

inline void set_this_cpu(core::Cpu* cpu) {
    hal_sim::current_fast_cpu().cpu_data = cpu;
}

inline void sync_point() {
    if (hal_sim::g_sync_points) [[unlikely]] {
        hal_sim::sync_point_now();
    }
}

[[nodiscard]] inline IrqFlags irq_save() {
    hal_sim::FastCpu& c = hal_sim::current_fast_cpu();
    c.clock_ns += c.irq_op_ns;
    IrqFlags was = c.irq_enabled ? 1 : 0;
    c.irq_enabled = false;
    return was;
}

inline void irq_restore(IrqFlags flags) {
    hal_sim::FastCpu& c = hal_sim::current_fast_cpu();
    c.clock_ns += c.irq_op_ns;
    c.irq_enabled = flags != 0;
    if (c.irq_enabled) {
        // Turning interrupts on lets in what is due, and whatever other CPUs do meanwhile.
        if (c.next_event_ns <= c.clock_ns) [[unlikely]] {
            hal_sim::deliver_pending_now();
        }
        sync_point();
    }
}

inline void irq_enable() {
    irq_restore(1);
}

inline bool irq_enabled() {
    return hal_sim::current_fast_cpu().irq_enabled;
}

inline uint64_t now_ns() {
    return hal_sim::current_fast_cpu().clock_ns;
}

// One cycle a virtual nanosecond.
inline uint64_t cycle_count() {
    return hal_sim::current_fast_cpu().clock_ns;
}

} // namespace hal
