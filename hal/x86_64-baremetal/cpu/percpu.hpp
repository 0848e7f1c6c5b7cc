#pragma once

// The backend's per-CPU block, reached through GS: IA32_GS_BASE points at the calling CPU's
// block from the first lines of duet_kernel_entry on, so hal::this_cpu() and hal::cpu_index()
// are one %gs-relative load each.
// NOTE: loading a selector into GS resets the base; nothing may do so after install().

#include <hal/bootboot.hpp>
#include <hal/cpu.hpp>

#include <stddef.h>
#include <stdint.h>

namespace x86_percpu {

struct Block {
    core::Cpu* cpu;   // set by hal::set_this_cpu(); null until then
    uint32_t index;   // the BOOTBOOT core index (RDI at entry)
    uint32_t apic_id; // the local APIC's ID, valid once `present` is set
    // The one-shot timer's deadline (hal::timer_arm), valid while `timer_armed`.
    uint64_t timer_deadline_ns;
    uint64_t ipis; // IPIs taken, for the self-test (boot/self_test.cpp)
    // Where this CPU reaches its local APIC's registers: the physical address under the
    // loader's tables, the kernel's mapping of them once it has loaded the kernel address
    // space (devices/lapic.cpp); 0 until lapic::init_this_cpu().
    uint64_t lapic;
    // User mode (cpu/user.cpp): the top of the kernel stack the CPU enters the kernel on from
    // user mode (hal::set_kernel_stack), and where the system-call entry keeps the user's RSP
    // until it is on that stack. Read by cpu/user_entry.S at these offsets.
    uint64_t kernel_rsp;
    uint64_t user_rsp;
    bool timer_armed;
    bool present;          // install() has run on this CPU
    bool interrupts_ready; // its IDT is loaded: an NMI no longer triple-faults it
    bool in_exception;     // it is reporting an exception (a second one stops at once)
    // boot/self_test.cpp runs before the core is set up: its timer ticks and IPIs are counted
    // here and not passed to the core.
    bool in_self_test;
    bool user_ready; // cpu/user.cpp set up SYSCALL, SMEP and SMAP on this CPU
};
// The asm in hal_backend/inline.hpp and cpu/cpu.cpp reads these offsets.
static_assert(offsetof(Block, cpu) == kCpuOffset);
static_assert(offsetof(Block, index) == kIndexOffset);
inline constexpr size_t kKernelRspOffset = 40;
inline constexpr size_t kUserRspOffset = 48;
static_assert(offsetof(Block, kernel_rsp) == kKernelRspOffset);
static_assert(offsetof(Block, user_rsp) == kUserRspOffset);

inline constexpr uint32_t kMsrGsBase = 0xC000'0101;

// Points GS at core `index`'s block (index < bootboot_abi::kMaxCores) and records the index and
// the CPU's local APIC ID.
void install(uint32_t index, uint32_t apic_id);

// Core `index`'s block, from any CPU (index < bootboot_abi::kMaxCores).
Block& block(uint32_t index);

// The calling CPU's block.
Block& this_block();

} // namespace x86_percpu
