#pragma once

// Where Duet's QEMU loader puts what it allocates, and how it turns the firmware's E820 map
// into the BOOTBOOT memory map with holes for those allocations. The simulator's firmware
// calls the same functions, so both machines show the kernel the same map, byte for byte.
//
// Header-only and freestanding: it is compiled into the loader, the simulator and the tests.
// The placement is fixed and does not depend on the size of the kernel or the initrd, so a
// scenario's output does not change when the kernel grows.

#include <hal/bootboot.hpp>
#include <hal/firmware/e820.hpp>
#include <hal/firmware/loader_model.hpp>

#include <stddef.h>
#include <stdint.h>

namespace firmware {

// The boot area: one contiguous run of RAM starting at 2 MiB, above the loader's own image
// (linked at 1 MiB) and below anything QEMU places past the initrd module.
inline constexpr uint64_t kBootAreaBase = 2ull << 20;
// Room for the kernel segment (code + data + bss), which a level 1 kernel keeps below 2 MiB.
inline constexpr uint64_t kKernelWindowSize = 2ull << 20;
// Room for the initrd, the protocol's maximum.
inline constexpr uint64_t kInitrdWindowSize = bootboot_abi::kMaxInitrdSize;
// PML4, low PDPT, four PDs (identity map of 4 GiB with 2 MiB pages), high PDPT, high PD,
// high PT (bootboot, environment, kernel segment and the core stacks in the top 2 MiB).
inline constexpr uint64_t kTablePages = 9;
// One page for the GDT the loader leaves loaded when it enters the kernel.
inline constexpr uint64_t kGdtPages = 1;

struct BootPlan {
    uint32_t numcores;
    uint64_t kernel;      // the kernel segment, mapped at bootboot_abi::kKernelVirt
    uint64_t initrd;      // the initrd, copied here from wherever the firmware left it
    uint64_t tables;      // kTablePages page-table pages, the PML4 first
    uint64_t gdt;         // the loader's GDT
    uint64_t bootboot;    // the bootboot page, mapped at bootboot_abi::kBootbootVirt
    uint64_t environment; // the environment page, mapped at bootboot_abi::kEnvironmentVirt
    uint64_t stacks;      // stack_pages pages; page k holds the 1 KiB stacks of cores 4k..4k+3
    uint64_t stack_pages;
    uint64_t end; // [kBootAreaBase, end) is left out of the memory map
};

constexpr uint64_t stack_pages_for(uint32_t numcores) {
    uint64_t per_page = kPage / bootboot_abi::kInitStackSize;
    return (numcores + per_page - 1) / per_page;
}

constexpr BootPlan plan_boot_area(uint32_t numcores) {
    BootPlan p{};
    p.numcores = numcores;
    p.kernel = kBootAreaBase;
    p.initrd = p.kernel + kKernelWindowSize;
    p.tables = p.initrd + kInitrdWindowSize;
    p.gdt = p.tables + kTablePages * kPage;
    p.bootboot = p.gdt + kGdtPages * kPage;
    p.environment = p.bootboot + kPage;
    p.stacks = p.environment + kPage;
    p.stack_pages = stack_pages_for(numcores);
    p.end = p.stacks + p.stack_pages * kPage;
    return p;
}

enum class FirmwareError {
    None,
    BadCoreCount,   // numcores is 0 or above bootboot_abi::kMaxCores
    AreaNotUsable,  // the boot area is not wholly inside usable RAM
    TooManyEntries, // the BOOTBOOT map would not fit its page
};

constexpr const char* describe(FirmwareError e) {
    switch (e) {
    case FirmwareError::None:
        return "no error";
    case FirmwareError::BadCoreCount:
        return "the core count must be between 1 and 256";
    case FirmwareError::AreaNotUsable:
        return "the loader's boot area (from 2 MiB) is not wholly inside usable RAM";
    case FirmwareError::TooManyEntries:
        return "the memory map has more entries than the bootboot page holds";
    }
    return "unknown error";
}

// The BIOS loader's type mapping: 1 is free, 3 and 4 are ACPI, everything else is used.
constexpr bootboot_abi::MmapType bootboot_type(uint32_t e820_type) {
    using bootboot_abi::MmapType;
    if (e820_type == kE820Usable) {
        return MmapType::Free;
    }
    if (e820_type == kE820AcpiReclaim || e820_type == kE820AcpiNvs) {
        return MmapType::Acpi;
    }
    return MmapType::Used;
}

// The boot area must lie inside one usable entry and overlap no entry of another type.
constexpr FirmwareError check_boot_area(const E820Entry* map, size_t n, const BootPlan& plan) {
    if (plan.numcores == 0 || plan.numcores > bootboot_abi::kMaxCores) {
        return FirmwareError::BadCoreCount;
    }
    bool inside = false;
    for (size_t i = 0; i < n; ++i) {
        const E820Entry& e = map[i];
        if (!e820_counts(e)) {
            continue;
        }
        uint64_t end = e.base + e.length;
        if (end < e.base) {
            end = ~uint64_t{0};
        }
        bool overlaps = e.base < plan.end && kBootAreaBase < end;
        if (!overlaps) {
            continue;
        }
        if (e.type != kE820Usable) {
            return FirmwareError::AreaNotUsable;
        }
        if (e.base <= kBootAreaBase && plan.end <= end) {
            inside = true;
        }
    }
    return inside ? FirmwareError::None : FirmwareError::AreaNotUsable;
}

// Writes the BOOTBOOT memory map for `map` into `out` (capacity bootboot_abi::kMaxMmapEntries):
// entries sorted by base, types mapped as the BIOS loader maps them, empty and disabled
// entries dropped, and the boot area cut out of the free entries. Returns the entry count.
constexpr FirmwareError build_mmap(const E820Entry* map, size_t n, const BootPlan& plan,
                                   bootboot_abi::MmapEntry* out, size_t* count) {
    using bootboot_abi::MmapEntry;
    using bootboot_abi::MmapType;
    constexpr size_t cap = bootboot_abi::kMaxMmapEntries;
    size_t k = 0;
    auto push = [&](uint64_t base, uint64_t length, MmapType type) -> bool {
        if (length < 16) {
            return true;
        }
        if (k == cap) {
            return false;
        }
        out[k++] = MmapEntry::make(base, length, type);
        return true;
    };
    for (size_t i = 0; i < n; ++i) {
        const E820Entry& e = map[i];
        if (!e820_counts(e)) {
            continue;
        }
        MmapType type = bootboot_type(e.type);
        uint64_t end = e.base + e.length;
        if (end < e.base) {
            end = ~uint64_t{0};
        }
        if (type == MmapType::Free && e.base < plan.end && kBootAreaBase < end) {
            if (e.base < kBootAreaBase && !push(e.base, kBootAreaBase - e.base, type)) {
                return FirmwareError::TooManyEntries;
            }
            if (plan.end < end && !push(plan.end, end - plan.end, type)) {
                return FirmwareError::TooManyEntries;
            }
            continue;
        }
        if (!push(e.base, end - e.base, type)) {
            return FirmwareError::TooManyEntries;
        }
    }
    // Insertion sort: stable, no allocation, and the maps are short.
    for (size_t i = 1; i < k; ++i) {
        MmapEntry v = out[i];
        size_t j = i;
        while (j > 0 && out[j - 1].ptr > v.ptr) {
            out[j] = out[j - 1];
            --j;
        }
        out[j] = v;
    }
    *count = k;
    return FirmwareError::None;
}

} // namespace firmware
