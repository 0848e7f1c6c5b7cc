#pragma once

// The core's boot entry points. The backend (bare metal: the BOOTBOOT entry stub; simulator:
// the simulated firmware) calls boot_main() on the bootstrap CPU and ap_main() on the others.

#include <hal/bootboot.hpp>

namespace core {

// What the firmware handed over, as the kernel sees it (through the BOOTBOOT mappings on
// bare metal, through the direct map in the simulator).
struct BootInfo {
    const bootboot_abi::Info* bootboot; // the bootboot page: header and memory map
    const char* environment;            // the environment page, NUL-terminated
};

// Runs on the bootstrap CPU, with interrupts off, on the loader's 1 KiB stack. Never returns.
[[noreturn]] void boot_main(const BootInfo& info);

// Runs on every other CPU once the bootstrap CPU releases it. Never returns.
[[noreturn]] void ap_main();

} // namespace core
