#pragma once

// Reading what a BOOTBOOT loader mapped: the protocol reports neither the kernel's physical
// address nor the core stacks', so the kernel walks the loader's page tables (CR3 at entry) to
// find them. Both HAL backends answer hal::boot_image() with these functions: bare metal over
// the real loader's tables, the simulator over the ones its firmware model wrote.

#include <hal/bootboot.hpp>

#include <stddef.h>
#include <stdint.h>

namespace firmware {

inline constexpr uint64_t kPtePresentBit = 1ull << 0;
inline constexpr uint64_t kPteLargeBit = 1ull << 7;
inline constexpr uint64_t kPteAddress = 0x000F'FFFF'FFFF'F000ull;

// The physical address `va` has under the 4-level tables at `cr3`, or 0 if it has none.
// `read(pa)` returns the 8-byte table entry at physical address `pa`.
template <typename Read>
constexpr uint64_t loader_translate(uint64_t cr3, uint64_t va, Read read) {
    uint64_t table = cr3 & kPteAddress;
    for (unsigned level = 4; level >= 1; --level) {
        unsigned shift = 12 + 9 * (level - 1);
        uint64_t e = read(table + ((va >> shift) & 511) * 8);
        if ((e & kPtePresentBit) == 0) {
            return 0;
        }
        if (level == 1 || (level <= 3 && (e & kPteLargeBit) != 0)) {
            uint64_t page = 1ull << shift;
            return (e & kPteAddress & ~(page - 1)) + (va & (page - 1));
        }
        table = e & kPteAddress;
    }
    return 0;
}

struct CoreStacks {
    uint64_t first; // physical address of the page mapped just below 2^64; 0 if not found
    uint64_t pages;
};

// The loaders' 1 KiB core stacks, four to a page, downwards from 2^64: one run of physical
// pages upwards. Not found (first 0) if the pages are not mapped that way.
template <typename Read>
constexpr CoreStacks loader_core_stacks(uint64_t cr3, uint32_t numcores, Read read) {
    constexpr uint64_t page = bootboot_abi::kPageSize;
    uint64_t per_page = page / bootboot_abi::kInitStackSize;
    uint64_t pages = (numcores + per_page - 1) / per_page;
    uint64_t first = loader_translate(cr3, 0 - page, read);
    for (uint64_t k = 0; k < pages; ++k) {
        if (first == 0 || loader_translate(cr3, 0 - (k + 1) * page, read) != first + k * page) {
            return {0, 0};
        }
    }
    return {first, pages};
}

} // namespace firmware
