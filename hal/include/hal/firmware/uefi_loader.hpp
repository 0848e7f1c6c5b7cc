#pragma once

// The upstream BOOTBOOT UEFI loader (bootboot.efi, protocol level 2) as a plausible model: the
// real one hands over OVMF's memory map, whose layout changes from boot to boot, so this does
// not try to match it byte for byte (docs/boot.md shows one). What it keeps of the real loader:
//   - the type conversion: usable RAM is free, ACPI reclaimable and NVS memory is ACPI,
//     everything else is used, in page-sized pieces (usable memory rounded inwards, the rest
//     outwards), and adjacent entries of one type merged;
//   - its allocations (the bootboot and environment pages, the initrd, the kernel copy, 37
//     pages of page tables and the core stacks after them) made top-down, as the firmware's
//     AllocatePages does, in the highest usable entry below 4 GiB that holds them, and left out
//     of the map as one hole;
//   - nothing else is taken: page 0 and the low 640 KiB stay free;
//   - the kernel segment mapped writable; at most 240 map entries.

#include <hal/bootboot.hpp>
#include <hal/firmware/loader_model.hpp>

#include <stddef.h>
#include <stdint.h>

namespace firmware::uefi {

inline constexpr uint64_t kTablePages = 37; // PML4, identity map of 16 GiB, the top 2 MiB
inline constexpr size_t kMaxEntries = 240;
inline constexpr uint8_t kProtocol = 2 | (1 << 2); // dynamic, UEFI

namespace detail {

using bootboot_abi::MmapEntry;
using bootboot_abi::MmapType;

constexpr MmapType type_of(uint32_t e820_type) {
    if (e820_type == kE820Usable) {
        return MmapType::Free;
    }
    if (e820_type == kE820AcpiReclaim || e820_type == kE820AcpiNvs) {
        return MmapType::Acpi;
    }
    return MmapType::Used;
}

// Ranges with their type, before they are packed into MmapEntry form.
struct Range {
    uint64_t base;
    uint64_t end;
    MmapType type;
};

// Inserts `r` into the sorted `ranges` (count `*k`, capacity `cap`).
constexpr bool insert(Range* ranges, size_t* k, size_t cap, Range r) {
    if (*k == cap) {
        return false;
    }
    size_t j = (*k)++;
    while (j > 0 && ranges[j - 1].base > r.base) {
        ranges[j] = ranges[j - 1];
        --j;
    }
    ranges[j] = r;
    return true;
}

} // namespace detail

// As bios::build(): the map into `mmap` (capacity at least kMaxEntries), the placement in `out`.
constexpr LoaderStatus build(const E820Entry* map, size_t n, const LoaderInput& in, Handover* out,
                             MmapOut& mmap) {
    using detail::MmapType;
    using detail::Range;

    if (in.numcores == 0 || in.numcores > bootboot_abi::kMaxCores) {
        return {LoaderError::BadCoreCount, kNoEntry};
    }
    if (in.initrd_bytes > bootboot_abi::kMaxInitrdSize) {
        return {LoaderError::InitrdTooBig, kNoEntry};
    }
    if (in.kernel.file_size == 0) {
        return {LoaderError::KernelEmpty, kNoEntry};
    }
    if (in.kernel.mem_size >= bootboot_abi::kMaxKernelSize) {
        return {LoaderError::KernelTooBig, kNoEntry};
    }
    size_t cap = mmap.capacity < kMaxEntries ? mmap.capacity : kMaxEntries;
    Range in_ranges[kMaxEntries] = {};
    size_t n_in = 0;

    // 1. Page-sized pieces, sorted by address.
    for (size_t i = 0; i < n; ++i) {
        if (!e820_counts(map[i])) {
            continue;
        }
        MmapType type = detail::type_of(map[i].type);
        uint64_t base = map[i].base;
        uint64_t end = e820_end(map[i]);
        if (type == MmapType::Free) {
            base = page_round_up(base);
            end &= ~(kPage - 1);
        } else {
            base &= ~(kPage - 1);
            end = end > ~uint64_t{0} - kPage ? ~(kPage - 1) : page_round_up(end);
        }
        if (end <= base) {
            continue;
        }
        if (!detail::insert(in_ranges, &n_in, cap, Range{base, end, type})) {
            return {LoaderError::TooManyEntries, i};
        }
    }
    if (n_in == 0) {
        return {LoaderError::NoMemoryMap, kNoEntry};
    }

    // 2. No overlaps: free memory gives way to anything else, of two other kinds the lower
    //    one wins; then neighbours of one type merged.
    Range r[kMaxEntries] = {};
    size_t k = 0;
    for (size_t i = 0; i < n_in; ++i) {
        Range cur = in_ranges[i];
        if (cur.type != MmapType::Free) {
            if (!detail::insert(r, &k, cap, cur)) {
                return {LoaderError::TooManyEntries, kNoEntry};
            }
            continue;
        }
        uint64_t from = cur.base;
        for (size_t q = 0; q < n_in && from < cur.end; ++q) {
            const Range& other = in_ranges[q];
            if (other.type == MmapType::Free || other.end <= from || other.base >= cur.end) {
                continue;
            }
            if (other.base > from &&
                !detail::insert(r, &k, cap, Range{from, other.base, MmapType::Free})) {
                return {LoaderError::TooManyEntries, kNoEntry};
            }
            from = other.end > from ? other.end : from;
        }
        if (from < cur.end && !detail::insert(r, &k, cap, Range{from, cur.end, MmapType::Free})) {
            return {LoaderError::TooManyEntries, kNoEntry};
        }
    }
    size_t w = 0;
    for (size_t j = 0; j < k; ++j) {
        Range cur = r[j];
        if (w > 0 && cur.base < r[w - 1].end) {
            cur.base = r[w - 1].end; // overlapping: the lower one keeps the overlap
            if (cur.end <= cur.base) {
                continue;
            }
        }
        if (w > 0 && r[w - 1].type == cur.type && r[w - 1].end == cur.base) {
            r[w - 1].end = cur.end;
            continue;
        }
        r[w++] = cur;
    }
    k = w;

    // 3. The loader's allocations, top-down in the highest free range below 4 GiB.
    uint32_t cores = in.numcores;
    uint64_t stack_pages = page_round_up(uint64_t{cores} * bootboot_abi::kInitStackSize) / kPage;
    uint64_t initrd_size = page_round_up(in.initrd_bytes);
    uint64_t kernel_size = page_round_up(in.kernel.mem_size);
    uint64_t total = 2 * kPage + initrd_size + kernel_size + (kTablePages + stack_pages) * kPage;
    size_t area = k;
    for (size_t j = k; j-- > 0;) {
        if (r[j].type != MmapType::Free || r[j].base >= kFourGiB) {
            continue;
        }
        uint64_t top = r[j].end < kFourGiB ? r[j].end : kFourGiB;
        if (top - r[j].base >= total) {
            area = j;
            break;
        }
    }
    if (area == k) {
        return {LoaderError::NoInitrdArea, kNoEntry};
    }
    uint64_t top = r[area].end < kFourGiB ? r[area].end : kFourGiB;
    uint64_t hole = top - total;
    *out = Handover{};
    out->numcores = cores;
    out->protocol = kProtocol;
    out->bootboot = top - kPage;
    out->initrd = out->bootboot - initrd_size;
    out->initrd_size = initrd_size;
    out->environment = out->initrd - kPage;
    out->kernel = out->environment - kernel_size;
    out->kernel_size = kernel_size;
    out->tables = hole;
    out->table_pages = kTablePages;
    out->stacks = hole + kTablePages * kPage;
    out->stack_pages = stack_pages;
    out->kernel_writable = true;

    // 4. The hole cut out of its range, and the ranges packed.
    if (top < r[area].end) {
        if (k == cap) {
            return {LoaderError::TooManyEntries, kNoEntry};
        }
        for (size_t m = k; m > area + 1; --m) {
            r[m] = r[m - 1];
        }
        ++k;
        r[area + 1] = Range{top, r[area].end, MmapType::Free};
    }
    r[area].end = hole;
    size_t count = 0;
    for (size_t j = 0; j < k; ++j) {
        if (r[j].end > r[j].base) {
            mmap.entries[count++] =
                bootboot_abi::MmapEntry::make(r[j].base, r[j].end - r[j].base, r[j].type);
        }
    }
    mmap.count = count;
    return {};
}

// The loader's page tables (kTablePages at h.tables, zeroed; the core stacks follow them), as
// it builds them: 0-16 GiB identity-mapped read/write (2 MiB pages, the first 2 MiB in 4 KiB
// pages); in the top 2 MiB the bootboot and environment pages read-only, the kernel copy
// writable, the core stacks downwards from 2^64. No framebuffer: the simulator has none.
constexpr void write_tables(uint64_t* tables, const Handover& h) {
    constexpr size_t kEntries = 512;
    constexpr uint64_t kPresent = 1;
    constexpr uint64_t kTable = 3;
    constexpr uint64_t kLarge = 0x83;
    auto page = [&](size_t p) { return tables + p * kEntries; };
    auto phys = [&](size_t p) { return h.tables + p * kPage; };
    page(0)[0] = phys(1) | kTable;
    page(0)[kEntries - 1] = phys(20) | kTable;
    for (size_t i = 0; i < 16; ++i) {
        page(1)[i] = phys(3 + i) | kTable;
    }
    for (size_t i = 1; i < kEntries * 16; ++i) {
        page(3)[i] = (uint64_t{i} << 21) | kLarge;
    }
    page(3)[0] = phys(2) | kTable;
    for (size_t i = 0; i < kEntries; ++i) {
        page(2)[i] = (i * kPage) | kTable;
    }
    page(20)[kEntries - 1] = phys(22) | kTable;
    page(22)[kEntries - 1] = phys(23) | kTable;
    uint64_t* pt = page(23);
    pt[0] = h.bootboot | kPresent;
    pt[1] = h.environment | kPresent;
    constexpr size_t kKernelSlot = (bootboot_abi::kKernelVirt >> 12) & (kEntries - 1);
    for (uint64_t i = 0; i < h.kernel_size / kPage && kKernelSlot + i < kEntries; ++i) {
        pt[kKernelSlot + i] = (h.kernel + i * kPage) | kTable;
    }
    for (uint64_t s = 0; s < h.stack_pages && s < kEntries; ++s) {
        pt[kEntries - 1 - s] = (h.stacks + s * kPage) | kTable;
    }
}

} // namespace firmware::uefi
