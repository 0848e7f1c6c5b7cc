#pragma once

// The bare-metal half of hal/context.hpp: what a parked kernel thread keeps of its CPU.

#include <stdint.h>

namespace hal {

using ContextEntry = void (*)(void* arg);

// A parked context is its stack pointer: context_switch() pushes the callee-saved registers
// and RFLAGS on the thread's own stack before saving RSP here.
struct ArchContext {
    uint64_t rsp;
};

} // namespace hal
