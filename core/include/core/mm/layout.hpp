#pragma once

// The kernel's virtual address layout (docs/virtual-memory.md has the table). Everything from
// kMmioBase up is fixed by the BOOTBOOT protocol (level 1, static addresses); the rest is
// Duet's choice. Header-only constants, so that a backend can include it too (the bare-metal
// phys_to_virt() is kDirectMapBase + pa once the kernel address space is loaded).

#include <hal/bootboot.hpp>
#include <hal/types.hpp>

#include <stdint.h>

namespace core::mm {

// All RAM at one offset, in PML4 slots 256-383: up to 64 TiB of physical address space.
inline constexpr hal::VirtAddr kDirectMapBase{0xFFFF'8000'0000'0000};
inline constexpr hal::VirtAddr kDirectMapEnd{0xFFFF'C000'0000'0000};

// Kernel stacks: slots of an unmapped guard page followed by the stack's pages, the lowest
// slot at kStacksBase, with one more unmapped page left below kStacksEnd.
inline constexpr hal::VirtAddr kStacksBase{0xFFFF'FFFF'C000'0000};
inline constexpr hal::VirtAddr kStacksEnd{bootboot_abi::kMmioVirt};

// BOOTBOOT's windows.
inline constexpr hal::VirtAddr kMmioBase{bootboot_abi::kMmioVirt}; // device registers, uncached
inline constexpr hal::VirtAddr kMmioEnd{bootboot_abi::kFramebufferVirt};
inline constexpr hal::VirtAddr kFramebufferBase{bootboot_abi::kFramebufferVirt}; // WC
inline constexpr hal::VirtAddr kFramebufferEnd{bootboot_abi::kBootbootVirt};
inline constexpr hal::VirtAddr kBootbootPage{bootboot_abi::kBootbootVirt};
inline constexpr hal::VirtAddr kEnvironmentPage{bootboot_abi::kEnvironmentVirt};
inline constexpr hal::VirtAddr kKernelImageBase{bootboot_abi::kKernelVirt};

// The loader's 1 KiB core stacks: core i starts at -i KiB, so page k below 2^64 holds the
// stacks of cores 4k to 4k+3.
constexpr hal::VirtAddr boot_stack_page(uint64_t k) {
    return hal::VirtAddr(0 - (k + 1) * bootboot_abi::kPageSize);
}

constexpr hal::VirtAddr direct_map(hal::PhysAddr pa) {
    return kDirectMapBase.offset(pa.value());
}

} // namespace core::mm
