// From the loader's hand-over to core::boot_main() and core::ap_main(): make the CPU state what
// the kernel expects on every core (GDT, TSS, IDT, control registers, local APIC), bring up
// COM1, the PICs and the clock on the bootstrap CPU, and pass the BOOTBOOT pages to the core.
//
// Every function here runs on the loader's 1 KiB stack: tools/check-stack.py checks the whole
// path from duet_kernel_entry down, so keep frames small and calls direct.

#include "boot/bootboot_symbols.hpp"
#include "boot/self_test.hpp"
#include "cpu/gdt.hpp"
#include "cpu/interrupts.hpp"
#include "cpu/percpu.hpp"
#include "cpu/time.hpp"
#include "cpu/vectors.hpp"
#include "cpu/x86.hpp"
#include "devices/lapic.hpp"
#include "devices/pic.hpp"
#include "devices/uart16550.hpp"

#include <core/boot/boot.hpp>
#include <core/lib/compiler.hpp>
#include <core/lib/log.hpp>
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

// Set by the bootstrap CPU once the IDT is built; the others load it only then.
bool s_idt_ready = false;
// Set by hal::release_secondary_cpus(); zero in the loader-cleared bss until then.
bool s_secondaries_released = false;

constexpr uint32_t kCpuidExtFeatures = 0x8000'0001;
constexpr uint32_t kCpuidExtNx = 1u << 20; // EDX

// Caches on (both BOOTBOOT loaders leave CR0.CD set, which is very slow outside TCG), x87
// errors reported natively (NE, MP). NOTE: not CR0.WP: the BIOS loader maps the whole kernel
// segment (data and bss included) read-only and relies on WP being clear, so every write to
// the kernel's own globals would fault, before any IDT exists, until the kernel's own tables
// are loaded. hal::load_page_table() sets WP then.
//
// CR4 is set, not patched: the loaders hand over 0x368 (DE, PAE, MCE, PCE, OSFXSR) on every
// core but the UEFI loader's bootstrap CPU, which keeps the firmware's (OVMF: 0x768, with
// OSXMMEXCPT). The kernel keeps PAE (and LA57, which cannot change in long mode), and sets DE,
// MCE, OSFXSR, OSXMMEXCPT (so SIMD floating-point errors are #XM on every CPU) and TSD
// (RDTSC and RDTSCP fault in ring 3: a program gets time from the kernel only, which the
// simulator gives in virtual time); everything else is clear, PCE above all (RDPMC would
// work in ring 3 and read counters shared with the kernel and other programs), and FSGSBASE,
// PGE, PCIDE, OSXSAVE, PKE if a firmware left them. cpu/user.cpp adds SMEP and SMAP later.
BOOT_CODE void fix_control_registers() {
    uint64_t cr0 = x86::read_cr0();
    cr0 &= ~(x86::kCr0Cd | x86::kCr0Nw | x86::kCr0Em);
    cr0 |= x86::kCr0Ne | x86::kCr0Mp;
    x86::write_cr0(cr0);
    uint64_t cr4 = x86::read_cr4() & (x86::kCr4Pae | x86::kCr4La57);
    cr4 |= x86::kCr4De | x86::kCr4Mce | x86::kCr4Osfxsr | x86::kCr4Osxmmexcpt | x86::kCr4Tsd;
    x86::write_cr4(cr4);
}

BOOT_CODE bool cpu_has_nx() {
    if (x86::cpuid(0x8000'0000).eax < kCpuidExtFeatures) {
        return false;
    }
    return (x86::cpuid(kCpuidExtFeatures).edx & kCpuidExtNx) != 0;
}

// The initial APIC ID, which is what BOOTBOOT's bspid holds (re-read from the local APIC).
BOOT_CODE uint32_t initial_apic_id() {
    return x86::cpuid(1).ebx >> 24;
}

// NOTE: never inlined: tools/check-stack.py knows this function's indirect call by its name.
NOINLINE BOOT_CODE void run_constructors() {
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

BOOT_CODE void wait_for(const bool* flag) {
    while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
        asm volatile("pause" : : : "memory");
    }
}

BOOT_CODE NOINLINE void log_clock() {
    core::LogLine("clock")
        .str("TSC ")
        .dec(x86_time::tsc_hz() / 1000)
        .str(" kHz, local APIC timer ")
        .dec(x86_time::apic_timer_hz() / 1000)
        .str(" kHz, against the PIT");
}

} // namespace

// Called by _start (boot/entry.S) on every core, with the core index from RDI.
extern "C" [[noreturn]] BOOT_CODE void duet_kernel_entry(uint64_t core_index) {
    if (core_index >= bootboot_abi::kMaxCores) {
        x86::halt_forever();
    }
    auto index = static_cast<uint32_t>(core_index);
    uint32_t apic_id = initial_apic_id();
    // The GDT first: loading it reloads GS, which would drop the per-CPU base set next.
    x86_gdt::load(index);
    x86_percpu::install(index, apic_id);
    fix_control_registers();
    bool nx = cpu_has_nx();
    if (nx) {
        x86::wrmsr(x86::kMsrEfer, x86::rdmsr(x86::kMsrEfer) | x86::kEferNxe);
    }

    // NOTE: the bootstrap CPU is the one BOOTBOOT names by APIC ID; its index need not be 0.
    if (apic_id != bootboot.header.bspid) {
        wait_for(&s_idt_ready);
        x86_interrupts::load_idt();
        // The others wait here until the bootstrap CPU has set up per-CPU data.
        // NOTE: they poll a flag rather than sleep until an IPI: the local APIC and the clock
        // are the bootstrap CPU's to set up first.
        wait_for(&s_secondaries_released);
        lapic::init_this_cpu();
        x86_self_test::run(index);
        // Still on the loader's 1 KiB stack: core::ap_main() loads the kernel address space
        // and moves to the kernel stack the bootstrap CPU mapped for this CPU.
        core::ap_main();
    }

    uart16550::init();
    x86_interrupts::build_idt();
    __atomic_store_n(&s_idt_ready, true, __ATOMIC_RELEASE);
    x86_interrupts::load_idt();
    pic::remap_and_mask(x86_vectors::kPicBase);
    if (!nx) {
        refuse("this CPU has no NX bit; Duet needs it");
    }
    if (!lapic::probe()) {
        refuse("no local APIC in xAPIC mode below 4 GiB; Duet needs one");
    }
    lapic::init_this_cpu();
    if (!x86_time::calibrate()) {
        refuse("the TSC and the local APIC timer could not be calibrated against the PIT");
    }
    log_clock();
    run_constructors();
    x86_self_test::run(index);
    core::boot_main(core::BootInfo{&bootboot, environment});
}

namespace hal {

void release_secondary_cpus() {
    __atomic_store_n(&s_secondaries_released, true, __ATOMIC_RELEASE);
}

} // namespace hal
