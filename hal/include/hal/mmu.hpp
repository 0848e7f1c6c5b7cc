#pragma once

/// @file
/// The direct map and the MMU.

#include <hal/types.hpp>

namespace hal {

/// Kernel pointer to physical address `pa` through the direct map of all RAM. In the
/// simulator it points into the simulated RAM, where only usable areas are accessible.
/// Any context; never fails, but the result is only valid for RAM.
void* phys_to_virt(PhysAddr pa);

/// Loads the PML4 at `pml4` into the calling CPU (CR3). Interrupts off; the tables must map
/// the code and stack that run next.
void load_page_table(PhysAddr pml4);

/// Invalidates the calling CPU's TLB entry for `va` (INVLPG). Any context.
void flush_tlb_page(VirtAddr va);

/// Invalidates the calling CPU's non-global TLB entries. Any context.
void flush_tlb_all();

/// Programs the calling CPU's page attribute table (IA32_PAT) with `pat`: eight memory types,
/// one byte each, entry 0 in the lowest byte, which page-table entries select with their PWT,
/// PCD and PAT bits (core/mm/page_table.hpp has the kernel's value). Called once on every CPU
/// during bring-up, before it loads the kernel address space; interrupts off.
void set_page_attribute_table(uint64_t pat);

} // namespace hal
