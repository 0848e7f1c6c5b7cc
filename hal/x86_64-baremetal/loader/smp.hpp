#pragma once

// The cores: numbering them from the ACPI MADT, the page at 0x7000 they run in until they enter
// the kernel (loader/ap_start.S), waking them with INIT-SIPI-SIPI, and letting them go.

#include <hal/bootboot.hpp>
#include <hal/firmware/e820.hpp>

#include <stddef.h>
#include <stdint.h>

namespace loader::smp {

// BOOTBOOT's cores: the enabled local APICs in MADT order, capped at bootboot_abi::kMaxCores
// (256; the BIOS loader stops at 255).
struct Cores {
    uint32_t count;
    uint32_t bsp_index; // the bootstrap CPU's place in apic_ids
    // Whether the MADT lists no processor that is disabled or has the broadcast ID: the BIOS
    // loader then starts the others with broadcast IPIs, else one by one.
    bool broadcast;
    uint8_t apic_ids[bootboot_abi::kMaxCores];
};

// The bootstrap CPU's xAPIC ID.
uint8_t bsp_apic_id();

// Numbers the cores from the MADT under the RSDT/XSDT at `acpi_root` (0: none). Without a
// usable MADT, with `nosmp`, or when the MADT does not list the bootstrap CPU, only the
// bootstrap CPU counts (and the loader says why on COM1). `reverse` lists them in reverse
// MADT order: a test aid that makes the bootstrap CPU's index differ from 0.
Cores number_cores(uint64_t acpi_root, bool nosmp, bool reverse);

// Copies the cores' page to 0x7000 (always: it holds the hand-over GDT the bootstrap CPU loads
// too) and fills it in: the kernel's entry point, the local APIC's address, the core numbering.
// Returns the physical address of the hand-over GDT's pointer (for lgdt).
uint64_t install_ap_page(const Cores& cores, uint64_t entry);

// As the BIOS loader does before it starts the other cores: the IMCR set to route interrupts
// through the local APIC, the bootstrap CPU's local APIC enabled (SVR 0x1FF, TPR 0, flat
// logical destination 1), the CMOS shutdown code 0x0A with the warm-reset vector 0700:0000;
// then INIT-SIPI-SIPI to all but the bootstrap CPU (broadcast, or one by one as the BIOS
// loader chooses), and a wait until each core has reached the page at 0x7000, where it spins.
// Refuses the boot (status 49) if a core does not come up.
void start_secondary_cores(const Cores& cores);

// Lets the waiting cores into the kernel. The caller jumps to the kernel right after.
void release_secondary_cores();

} // namespace loader::smp
