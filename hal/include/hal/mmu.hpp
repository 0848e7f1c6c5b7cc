#pragma once

/// @file
/// The direct map and the MMU.

#include <hal/types.hpp>

namespace hal {

/// Kernel pointer to physical address `pa` through the direct map of all RAM. In the
/// simulator it points into the simulated RAM, where only usable areas are accessible.
/// Any context; never fails, but the result is only valid for RAM.
///
/// On bare metal the direct map moves once: until the first load_page_table() it is the
/// loader's identity map of the first 4 GiB, from then on core::mm::kDirectMapBase + pa, which
/// every table the core builds has. So a CPU must not use it until it has loaded the kernel's
/// tables itself (the core's boot path does that first thing on every CPU), and nothing may
/// keep a pointer from before the move. In the simulator it never moves: the simulated RAM is
/// one host reservation, and the kernel's tables are walked by the simulated MMU instead.
void* phys_to_virt(PhysAddr pa);

/// Loads the PML4 at `pml4` into the calling CPU (CR3). Interrupts off; the tables must map
/// the code and stack that run next, the direct map, and the device windows
/// (device_windows()) where device_window_mapped() said.
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

/// Where the firmware put the kernel image and its own pages, which the kernel address space
/// maps at BOOTBOOT's fixed virtual addresses. Section bounds are page-aligned and in this
/// order; a physical address of 0 means "not found".
struct BootImage {
    VirtAddr text_start; ///< read + execute
    VirtAddr text_end;
    VirtAddr rodata_start; ///< read-only
    VirtAddr rodata_end;
    VirtAddr data_start; ///< read-write: data and bss
    VirtAddr data_end;
    PhysAddr image;       ///< the physical address of text_start
    PhysAddr bootboot;    ///< the bootboot page
    PhysAddr environment; ///< the environment page
    /// The loader's 1 KiB core stacks: the page mapped k pages below the top of the address
    /// space (cores 4k to 4k+3) is at core_stacks + k pages. 0 pages if they are not laid out
    /// so (the core then refuses to boot more than one CPU).
    PhysAddr core_stacks;
    uint64_t core_stack_pages = 0;
};

/// The kernel image and the firmware's pages, as boot_image() describes them. Bare metal: the
/// linker script's section bounds, and the physical addresses read from the loader's page
/// tables. Simulator: the section bounds of the kernel file its firmware loaded (the core runs
/// as host code; by default a stand-in of Duet's shape) and the physical addresses read from
/// the loader tables the firmware wrote. Bootstrap CPU, before it loads a table of the core's.
BootImage boot_image();

/// Device registers the backend reaches through the kernel address space.
struct DeviceWindow {
    PhysAddr base; ///< page-aligned
    uint64_t bytes = 0;
};

/// The device windows the backend needs (at most `capacity` are written; returns how many
/// there are): on x86, the local APIC's page. The simulator names the same page although it
/// models the local APIC without memory accesses, so that the kernel's tables, and the frames
/// they take, are the same on both machines. The core maps each one uncached when it builds
/// the kernel address space, before any CPU loads it. Bootstrap CPU, during boot.
size_t device_windows(DeviceWindow* out, size_t capacity);

/// Device window `index` is mapped at `va` in the kernel address space. The backend uses that
/// address on each CPU from the CPU's first load_page_table() on. Bootstrap CPU, during boot.
void device_window_mapped(size_t index, VirtAddr va);

} // namespace hal
