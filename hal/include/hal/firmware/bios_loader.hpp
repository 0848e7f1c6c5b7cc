#pragma once

// The upstream BOOTBOOT BIOS loader (bootboot.bin, protocol level 1) as a model: where it puts
// what it allocates and the memory map it hands the kernel, given the firmware's E820 map.
// Duet's QEMU loader places everything with it, and the simulator's `bootboot-bios` and `duet`
// firmwares hand over what it computes, so all three show a kernel the same machine.
//
// Written from the loader's published source (x86_64-bios/bootboot.asm, MIT) and checked
// against the real loader under QEMU 7.2 (docs/boot.md has the measurements): it keeps that
// loader's 32-bit arithmetic and its quirks, because a kernel booted by it sees them:
//   - the E820 entry at address 0 loses its first 0x14000 bytes (the loader's image, the
//     bootboot and environment pages, its page tables), then the core stacks' pages;
//   - an entry's type overwrites the low byte of its length (lengths lose up to 255 bytes);
//   - extended attributes are never read (it asks for 20-byte entries), so no entry is dropped;
//   - the initrd goes at the start of the first usable entry, in the firmware's order, of at
//     least 18 MiB, the kernel copy right after it, and both are cut out of that entry;
//   - the entry holding the ACPI root table becomes ACPI, found with signed 32-bit compares, so
//     an entry that ends at 2 GiB exactly is never retyped (QEMU's -m 2G);
//   - at most 248 entries are read; at most 255 cores are started.

#include <hal/bootboot.hpp>
#include <hal/firmware/loader_model.hpp>

#include <stddef.h>
#include <stdint.h>

namespace firmware::bios {

inline constexpr uint64_t kBootbootPage = 0x8000;
inline constexpr uint64_t kEnvironmentPage = 0x9000;
inline constexpr uint64_t kTables = 0xA000;
inline constexpr uint64_t kTablePages = 10;
inline constexpr uint64_t kStacks = 0x14000;
// The loader zeroes room for 256 cores' stacks after it has read the initrd, whatever the
// number of cores: an initrd there would lose its first 256 KiB.
inline constexpr uint64_t kStackZone = 256 * bootboot_abi::kInitStackSize;
// What the loader keeps of the entry at address 0 (its image below 0x7C00, the two pages, the
// tables); the stacks come on top of it.
inline constexpr uint64_t kLowReserved = 0x14000;
// The first fit for the initrd: INITRD_MAXSIZE (16 MiB) + 2 MiB.
inline constexpr uint64_t kInitrdArea = 18ull << 20;
inline constexpr uint32_t kMaxCores = 255;
inline constexpr size_t kMaxEntries =
    (bootboot_abi::kPageSize - sizeof(bootboot_abi::Header)) / sizeof(bootboot_abi::MmapEntry);
inline constexpr uint8_t kProtocol = bootboot_abi::kProtocolStatic | bootboot_abi::kLoaderBios;

// The table pages at kTables, in order (CR3 = kTables).
inline constexpr size_t kPml4Page = 0;     // 0xA000
inline constexpr size_t kHighPdptPage = 1; // 0xB000: the top 1 GiB
inline constexpr size_t kHighPdPage = 2;   // 0xC000: the framebuffer (2 MiB pages) and ...
inline constexpr size_t kHighPtPage = 3;   // 0xD000: ... the top 2 MiB in 4 KiB pages
inline constexpr size_t kLowPdptPage = 4;  // 0xE000: identity map of 4 GiB ...
inline constexpr size_t kLowPdPage = 5;    // 0xF000-0x12FFF: ... in 2 MiB pages ...
inline constexpr size_t kLowPtPage = 9;    // 0x13000: ... but the first 2 MiB in 4 KiB pages
static_assert(kLowPtPage + 1 == kTablePages);

namespace detail {

constexpr uint64_t low32(uint64_t v) {
    return v & 0xFFFF'FFFFull;
}

// The loader updates 64-bit fields with 32-bit instructions: the high half stays as it was.
constexpr uint64_t with_low32(uint64_t v, uint64_t low) {
    return (v & ~0xFFFF'FFFFull) | low32(low);
}

constexpr int32_t signed32(uint64_t v) {
    uint32_t u = static_cast<uint32_t>(v);
    return u <= 0x7FFF'FFFFu ? static_cast<int32_t>(u)
                             : -static_cast<int32_t>(~u) - 1; // two's complement, portably
}

constexpr bootboot_abi::MmapType type_of(uint32_t e820_type) {
    using bootboot_abi::MmapType;
    if (e820_type == kE820Usable) {
        return MmapType::Free;
    }
    if (e820_type == kE820AcpiReclaim || e820_type == kE820AcpiNvs) {
        return MmapType::Acpi;
    }
    return MmapType::Used;
}

} // namespace detail

// Builds the memory map the loader hands over into `mmap` (capacity at least kMaxEntries) and
// says where it put everything. On an error the map is incomplete and `out` unspecified; where
// the error is about one E820 entry, the status names it.
constexpr LoaderStatus build(const E820Entry* map, size_t n, const LoaderInput& in, Handover* out,
                             MmapOut& mmap) {
    using bootboot_abi::MmapEntry;
    using bootboot_abi::MmapType;
    using detail::low32;
    using detail::with_low32;

    if (in.numcores == 0 || in.numcores > bootboot_abi::kMaxCores) {
        return {LoaderError::BadCoreCount, kNoEntry};
    }
    size_t cap = mmap.capacity < kMaxEntries ? mmap.capacity : kMaxEntries;
    MmapEntry* e = mmap.entries;
    size_t origin[kMaxEntries] = {}; // which E820 entry each map entry came from
    size_t k = 0;
    uint64_t initrd = 0;
    size_t initrd_entry = kNoEntry;

    // 1. The E820 map, in the firmware's order, sorted as it comes in (a stable insertion).
    for (size_t i = 0; i < n && k < cap; ++i) {
        uint64_t base = map[i].base;
        uint64_t length = map[i].length;
        if (base == 0) {
            if (length < kLowReserved) {
                return {LoaderError::FirstAreaTooSmall, i};
            }
            base = kLowReserved;
            length -= kLowReserved;
        }
        MmapType type = detail::type_of(map[i].type);
        uint64_t size = (length & ~uint64_t{0xFF}) | static_cast<uint64_t>(type);
        if (type == MmapType::Free && initrd_entry == kNoEntry) {
            bool huge = ((size >> 32) & 0xFF'FFFF) != 0;
            if (huge || (low32(size) & ~uint64_t{0xFF}) >= kInitrdArea) {
                if (base >= kFourGiB) {
                    return {LoaderError::InitrdAreaTooHigh, i};
                }
                if (base < kStacks + kStackZone) {
                    return {LoaderError::InitrdAreaTooLow, i};
                }
                initrd = base;
                initrd_entry = i;
            }
        }
        size_t j = k++;
        while (j > 0 && e[j - 1].ptr > base) {
            e[j] = e[j - 1];
            origin[j] = origin[j - 1];
            --j;
        }
        e[j] = MmapEntry{base, size};
        origin[j] = i;
    }
    if (k == 0) {
        return {LoaderError::NoMemoryMap, kNoEntry};
    }
    if (initrd_entry == kNoEntry) {
        return {LoaderError::NoInitrdArea, kNoEntry};
    }

    // 2. The entry holding the ACPI root table becomes ACPI (signed compares, as the loader's).
    if (in.acpi_root != 0) {
        int32_t root = detail::signed32(in.acpi_root);
        for (size_t j = 0; j < k; ++j) {
            if ((e[j].ptr >> 32) != (in.acpi_root >> 32)) {
                continue;
            }
            int32_t start = detail::signed32(e[j].ptr);
            int32_t end = detail::signed32((low32(e[j].ptr) + low32(e[j].size)) & ~uint64_t{0xF});
            if (root < start || root >= end) {
                continue;
            }
            e[j].size = (e[j].size & ~uint64_t{0xF}) | static_cast<uint64_t>(MmapType::Acpi);
            break;
        }
    }

    // 3. The initrd at the start of its area, the kernel segment copied right after it.
    if (in.initrd_bytes > bootboot_abi::kMaxInitrdSize) {
        return {LoaderError::InitrdTooBig, kNoEntry};
    }
    uint64_t file_size = in.kernel.file_size + (in.kernel.shared_object ? 0x4000 : 0);
    if (file_size == 0) {
        return {LoaderError::KernelEmpty, kNoEntry};
    }
    if (in.kernel.mem_size >= bootboot_abi::kMaxKernelSize) {
        return {LoaderError::KernelTooBig, kNoEntry};
    }
    uint64_t initrd_size = page_round_up(in.initrd_bytes);
    uint64_t kernel = initrd + initrd_size;
    uint64_t kernel_size =
        page_round_up(in.kernel.mem_size > file_size ? in.kernel.mem_size : file_size);
    uint64_t kernel_end = low32(kernel + kernel_size);

    // 4. Both are cut out of the first entry that starts at or below the initrd and ends at or
    //    after the copy (32-bit compares; the loader does not look at the entry's type).
    bool cut = false;
    for (size_t j = 0; j < k; ++j) {
        uint64_t start = low32(e[j].ptr);
        if (start > initrd) {
            break;
        }
        uint64_t end = low32((low32(e[j].size) & ~uint64_t{0xF}) + start);
        if (kernel_end > end) {
            continue;
        }
        if (start == initrd) {
            e[j].ptr = with_low32(e[j].ptr, kernel_end);
            uint64_t cut_bytes = (kernel_end - initrd) & ~uint64_t{0xF};
            e[j].size = with_low32(e[j].size, low32(e[j].size) - cut_bytes);
        } else {
            if (k == cap) {
                return {LoaderError::TooManyEntries, kNoEntry};
            }
            for (size_t m = k; m > j + 1; --m) {
                e[m] = e[m - 1];
                origin[m] = origin[m - 1];
            }
            ++k;
            MmapEntry whole = e[j];
            // The part before the initrd is typed free whatever it was.
            e[j].size = with_low32(whole.size, initrd - start + 1);
            e[j + 1].ptr = with_low32(whole.ptr, kernel_end);
            e[j + 1].size = with_low32(whole.size, low32(whole.size) - (kernel_end - start));
            origin[j + 1] = origin[j];
        }
        cut = true;
        break;
    }
    if (!cut) {
        return {LoaderError::KernelOutsideArea, initrd_entry};
    }

    // 5. The core stacks come out of the lowest entry (the one that started at 0).
    uint32_t cores = in.numcores < kMaxCores ? in.numcores : kMaxCores;
    uint64_t stack_bytes = page_round_up(uint64_t{cores} * bootboot_abi::kInitStackSize);
    if ((low32(e[0].size) & ~uint64_t{0xF}) < stack_bytes) {
        return {LoaderError::FirstAreaTooSmall, origin[0]};
    }
    e[0].ptr = with_low32(e[0].ptr, e[0].ptr + stack_bytes);
    e[0].size = with_low32(e[0].size, low32(e[0].size) - stack_bytes);

    mmap.count = k;
    *out = Handover{};
    out->numcores = cores;
    out->protocol = kProtocol;
    out->bootboot = kBootbootPage;
    out->environment = kEnvironmentPage;
    out->tables = kTables;
    out->table_pages = kTablePages;
    out->stacks = kStacks;
    out->stack_pages = stack_bytes / kPage;
    out->initrd = initrd;
    out->initrd_size = initrd_size;
    out->kernel = kernel;
    out->kernel_size = kernel_size;
    out->kernel_writable = false;
    return {};
}

// Page table entry bits the loader uses.
inline constexpr uint64_t kPtePresent = 1ull << 0;
inline constexpr uint64_t kPteWritable = 1ull << 1;
inline constexpr uint64_t kPteLarge = 1ull << 7;

// Writes the loader's page tables into `tables` (kTablePages * 512 entries, already zeroed),
// as it leaves them for the kernel (CR3 = kTables):
//   - 0-4 GiB identity-mapped read/write, in 2 MiB pages but the first 2 MiB in 4 KiB pages;
//   - in the top 2 MiB: the bootboot and environment pages read-only, then the kernel copy
//     read-only, one page more than its size (the loader's count), then the core stacks
//     read/write downwards from 2^64 (written last: they win where the two meet);
//   - 31 large pages of framebuffer at -64 MiB from `fb`, the address added up in 32 bits as
//     the loader does (from 0xfd000000 the 25th page wraps around to physical 0); none
//     without a framebuffer (the BIOS loader always has one; Duet's has none without a VGA).
constexpr void write_tables(uint64_t* tables, const Handover& h, uint64_t fb) {
    constexpr size_t kEntries = 512;
    auto page = [&](size_t p) { return tables + p * kEntries; };
    auto phys = [&](size_t p) { return kTables + p * kPage; };
    constexpr uint64_t kTable = kPtePresent | kPteWritable;

    page(kPml4Page)[0] = phys(kLowPdptPage) | kTable;
    page(kPml4Page)[kEntries - 1] = phys(kHighPdptPage) | kTable;
    page(kHighPdptPage)[kEntries - 1] = phys(kHighPdPage) | kTable;
    uint64_t fb_page = (fb & ~uint64_t{0xFF}) | kPtePresent | kPteWritable | kPteLarge;
    for (size_t i = 0; i < 31 && fb != 0; ++i) {
        page(kHighPdPage)[480 + i] = detail::low32(fb_page + i * (2ull << 20));
    }
    page(kHighPdPage)[kEntries - 1] = phys(kHighPtPage) | kTable;

    uint64_t* pt = page(kHighPtPage);
    pt[0] = h.bootboot | kPtePresent;
    pt[1] = h.environment | kPtePresent;
    for (uint64_t i = 0; i <= h.kernel_size / kPage && 2 + i < kEntries; ++i) {
        pt[2 + i] = (h.kernel + i * kPage) | kPtePresent;
    }
    for (uint64_t s = 0; s < h.stack_pages && s < kEntries; ++s) {
        pt[kEntries - 1 - s] = (h.stacks + s * kPage) | kTable;
    }

    for (size_t g = 0; g < 4; ++g) {
        page(kLowPdptPage)[g] = phys(kLowPdPage + g) | kTable;
        for (size_t i = 0; i < kEntries; ++i) {
            uint64_t pa = ((g * kEntries) + i) << 21;
            page(kLowPdPage + g)[i] = pa | kTable | kPteLarge;
        }
    }
    page(kLowPdPage)[0] = phys(kLowPtPage) | kTable;
    for (size_t i = 0; i < kEntries; ++i) {
        page(kLowPtPage)[i] = (i * kPage) | kTable;
    }
}

} // namespace firmware::bios
