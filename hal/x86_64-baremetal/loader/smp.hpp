#pragma once

// Starting the other cores: numbering them from the ACPI MADT, waking them with INIT-SIPI-SIPI,
// and holding them in the boot area until the bootstrap CPU lets them into the kernel.

#include <hal/bootboot.hpp>
#include <hal/firmware/boot_area.hpp>

#include <stddef.h>
#include <stdint.h>

namespace loader::smp {

// BOOTBOOT's cores: the enabled local APICs in MADT order, capped at bootboot_abi::kMaxCores.
struct Cores {
    uint32_t count;
    uint32_t bsp_index; // the bootstrap CPU's place in apic_ids
    uint8_t apic_ids[bootboot_abi::kMaxCores];
};

// The bootstrap CPU's xAPIC ID.
uint8_t bsp_apic_id();

// Numbers the cores from the MADT under the RSDT/XSDT at `acpi_root` (0: none). Without a
// usable MADT, with `nosmp`, or when the MADT does not list the bootstrap CPU, only the
// bootstrap CPU counts (and the loader says why on COM1). `reverse` lists them in reverse
// MADT order: a test aid that makes the bootstrap CPU's index differ from 0.
Cores number_cores(uint64_t acpi_root, bool nosmp, bool reverse);

// Writes the hand-over stub into the GDT page (behind the GDT, which is already written), then
// starts every core but the bootstrap CPU and waits until each has reached the stub, where it
// spins. The kernel's tables at plan.tables must be complete. Refuses the boot (status 49) if
// the trampoline page is not usable RAM or a core does not come up.
void start_secondary_cores(const Cores& cores, const firmware::BootPlan& plan, uint64_t entry,
                           const firmware::E820Entry* map, size_t map_count);

// Lets the waiting cores into the kernel. The caller jumps to the kernel right after.
void release_secondary_cores(const firmware::BootPlan& plan);

} // namespace loader::smp
