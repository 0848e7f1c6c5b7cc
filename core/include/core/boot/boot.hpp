#pragma once

// The core's boot entry points. The backend (bare metal: the BOOTBOOT entry stub; simulator:
// the simulated firmware) calls boot_main() on the bootstrap CPU and ap_main() on the others.

#include <hal/bootboot.hpp>

#include <stdint.h>

namespace core {

// What the firmware handed over, as the kernel sees it (through the BOOTBOOT mappings on
// bare metal, through the direct map in the simulator).
struct BootInfo {
    const bootboot_abi::Info* bootboot; // the bootboot page: header and memory map
    const char* environment;            // the environment page, NUL-terminated
};

// Runs on the bootstrap CPU, with interrupts off, on the loader's 1 KiB stack, which it leaves
// for a larger one in .bss as soon as the bump allocator runs (docs/boot.md). Never returns.
[[noreturn]] void boot_main(const BootInfo& info);

// Runs on every other CPU once the bootstrap CPU releases it, on the loader's stack: loads the
// kernel address space, then leaves that stack. Never returns.
[[noreturn]] void ap_main();

// Moves the calling CPU from its 1 KiB bring-up stack onto its kernel stack (which the
// bootstrap CPU mapped in the kernel address space; the CPU must have loaded that already),
// where it goes on with next(nullptr) with interrupts off. Never returns.
[[noreturn]] void leave_bring_up_stack(void (*next)(void*));

} // namespace core
