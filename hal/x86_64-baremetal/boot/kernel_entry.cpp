// From the loader's hand-over to core::boot_main(): make the CPU state what the kernel
// expects, bring up COM1, and pass the BOOTBOOT pages to the core.

#include "boot/bootboot_symbols.hpp"
#include "cpu/percpu.hpp"
#include "cpu/x86.hpp"
#include "devices/uart16550.hpp"

#include <core/boot/boot.hpp>
#include <core/lib/compiler.hpp>
#include <hal/cpu.hpp>
#include <hal/serial.hpp>
#include <hal/stop.hpp>

#include <stdint.h>

// Bounds of .init_array, from boot/link.ld. Nothing but the kernel runs the constructors.
extern "C" {
using Constructor = void (*)();
extern const Constructor __init_array_start[];
extern const Constructor __init_array_end[];
}

namespace {

// Set by hal::release_secondary_cpus(); zero in the loader-cleared bss until then.
bool s_secondaries_released = false;

constexpr uint32_t kCpuidExtFeatures = 0x8000'0001;
constexpr uint32_t kCpuidExtNx = 1u << 20; // EDX

// Caches on (the BIOS loader leaves CR0.CD set, which is very slow outside TCG), ring 0
// honours read-only pages (WP), x87 errors are reported natively (NE, MP).
BOOT_CODE void fix_control_registers() {
    uint64_t cr0 = x86::read_cr0();
    cr0 &= ~(x86::kCr0Cd | x86::kCr0Nw | x86::kCr0Em);
    cr0 |= x86::kCr0Wp | x86::kCr0Ne | x86::kCr0Mp;
    x86::write_cr0(cr0);
}

BOOT_CODE bool cpu_has_nx() {
    if (x86::cpuid(0x8000'0000).eax < kCpuidExtFeatures) {
        return false;
    }
    return (x86::cpuid(kCpuidExtFeatures).edx & kCpuidExtNx) != 0;
}

BOOT_CODE void run_constructors() {
    for (const Constructor* c = __init_array_start; c != __init_array_end; ++c) {
        (*c)();
    }
}

[[noreturn]] BOOT_CODE void refuse(const char* message) {
    static constexpr char kPrefix[] = "boot: ";
    hal::serial_write(kPrefix, sizeof(kPrefix) - 1);
    size_t len = 0;
    while (message[len] != '\0') {
        ++len;
    }
    hal::serial_write(message, len);
    hal::serial_write("\n", 1);
    hal::halt_machine(hal::ExitCode::Panic);
}

} // namespace

// Called by _start (boot/entry.S) on every core, with the core index from RDI.
extern "C" [[noreturn]] BOOT_CODE void duet_kernel_entry(uint64_t core_index) {
    if (core_index >= bootboot_abi::kMaxCores) {
        x86::halt_forever();
    }
    x86_percpu::install(static_cast<uint32_t>(core_index));
    fix_control_registers();
    bool nx = cpu_has_nx();
    if (nx) {
        x86::wrmsr(x86::kMsrEfer, x86::rdmsr(x86::kMsrEfer) | x86::kEferNxe);
    }

    if (core_index != 0) {
        // The other cores wait here until the bootstrap CPU has set up per-CPU data.
        // NOTE: there is no IDT yet, so they poll a flag rather than sleep until an IPI.
        while (!__atomic_load_n(&s_secondaries_released, __ATOMIC_ACQUIRE)) {
            asm volatile("pause" : : : "memory");
        }
        // FIXME: still on the loader's 1 KiB stack; per-CPU kernel stacks come with the
        // kernel address space.
        core::ap_main();
    }

    uart16550::init();
    if (!nx) {
        refuse("this CPU has no NX bit; Duet needs it");
    }
    run_constructors();
    core::boot_main(core::BootInfo{&bootboot, environment});
}

namespace hal {

void release_secondary_cpus() {
    __atomic_store_n(&s_secondaries_released, true, __ATOMIC_RELEASE);
}

} // namespace hal
