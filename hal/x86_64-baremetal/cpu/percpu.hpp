#pragma once

// The backend's per-CPU block, reached through GS: IA32_GS_BASE points at the calling CPU's
// block from the first lines of duet_kernel_entry on, so hal::this_cpu() and hal::cpu_index()
// are one %gs-relative load each.
// NOTE: loading a selector into GS resets the base; nothing may do so after entry.

#include <core/cpu.hpp>
#include <hal/bootboot.hpp>

#include <stddef.h>
#include <stdint.h>

namespace x86_percpu {

struct Block {
    core::Cpu* cpu; // set by hal::set_this_cpu(); null until then
    uint32_t index; // the BOOTBOOT core index (RDI at entry)
};
// The asm in cpu/cpu.cpp reads these offsets.
static_assert(offsetof(Block, cpu) == 0);
static_assert(offsetof(Block, index) == 8);

inline constexpr uint32_t kMsrGsBase = 0xC000'0101;

// Points GS at core `index`'s block (index < bootboot_abi::kMaxCores) and records the index.
void install(uint32_t index);

} // namespace x86_percpu
