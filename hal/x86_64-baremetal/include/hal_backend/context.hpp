#pragma once

// The bare-metal half of hal/context.hpp: what a parked kernel thread keeps of its CPU.

#include <stdint.h>

namespace hal {

using ContextEntry = void (*)(void* arg);

// A parked context is its stack pointer: context_switch() pushes the callee-saved registers
// and RFLAGS on the thread's own stack before saving RSP here (cpu/context_switch.S).
struct ArchContext {
    uint64_t rsp = 0;
    uint64_t stack_top = 0; // what the TSS's RSP0 becomes while it runs (0: leave it)
};

} // namespace hal
