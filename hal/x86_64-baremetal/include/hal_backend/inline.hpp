#pragma once

// The bare-metal HAL's hot functions, inline (ARCHITECTURE.md allows it for these): every
// spinlock, every scheduler decision and every per-CPU access asks for the calling CPU or
// saves the interrupt state. CPU identity is one %gs-relative load from the backend's per-CPU
// block (cpu/percpu.hpp, which asserts these offsets); irq_save() is PUSHF; POP; CLI. The rest
// of the HAL is out of line in cpu/*.cpp.

#include <hal/types.hpp>

namespace core {
struct Cpu;
}

namespace x86_percpu {

// Where the per-CPU block keeps the core's Cpu pointer and the CPU's index.
inline constexpr int kCpuOffset = 0;
inline constexpr int kIndexOffset = 8;

} // namespace x86_percpu

namespace hal {

// NOTE: volatile: the load must not be merged with one before a context switch, after which
// the thread may run on another CPU.
inline uint32_t cpu_index() {
    uint32_t index;
    asm volatile("movl %%gs:%c1, %0" : "=r"(index) : "i"(x86_percpu::kIndexOffset));
    return index;
}

inline core::Cpu* this_cpu() {
    core::Cpu* cpu;
    asm volatile("movq %%gs:%c1, %0" : "=r"(cpu) : "i"(x86_percpu::kCpuOffset));
    return cpu;
}

// Nothing to do: the CPU interleaves with the others at every instruction by itself.
inline void sync_point() {}

[[nodiscard]] inline IrqFlags irq_save() {
    IrqFlags flags;
    asm volatile("pushfq; popq %0; cli" : "=r"(flags) : : "memory");
    return flags;
}

inline bool irq_enabled() {
    uint64_t flags;
    asm volatile("pushfq; popq %0" : "=r"(flags));
    return (flags & (uint64_t{1} << 9)) != 0; // RFLAGS.IF
}

} // namespace hal
