#pragma once

// What a BOOTBOOT loader model takes and gives: the firmware's E820 map, the core count, the
// initrd's size and the kernel segment's in, and out the BOOTBOOT memory map with the holes the
// loader leaves for what it allocated, and where it put each of those things.
//
// The models (bios_loader.hpp, uefi_loader.hpp) are freestanding and allocate nothing: Duet's
// QEMU loader places things with the BIOS model, the simulator's firmware with either, and
// unit tests check both against what the real loaders were measured to do.

#include <hal/bootboot.hpp>
#include <hal/firmware/e820.hpp>

#include <stddef.h>
#include <stdint.h>

namespace firmware {

inline constexpr uint64_t kPage = bootboot_abi::kPageSize;
inline constexpr uint64_t kFourGiB = 4ull << 30;

constexpr uint64_t page_round_up(uint64_t bytes) {
    return (bytes + kPage - 1) & ~(kPage - 1);
}

// The kernel segment as a level 1 loader sees it in the ELF: the first PT_LOAD in the higher
// half. The BIOS loader copies file_size bytes and zeroes the rest up to mem_size.
struct KernelSegment {
    uint64_t file_size; // p_filesz
    uint64_t mem_size;  // p_memsz: code + data + bss
    // The BIOS loader copies 16 KiB more of the file when the segment's byte 16 is 3: a check
    // for an ET_DYN header, which only sees e_type when the segment starts the file.
    bool shared_object;
};

struct LoaderInput {
    uint32_t numcores;     // cores the ACPI MADT lists
    uint64_t initrd_bytes; // the initrd as the loader reads it (uncompressed)
    KernelSegment kernel;
    // Where the firmware's ACPI root table (RSDT or XSDT) lies, 0 if it has none: the BIOS
    // loader retypes the memory map entry that holds it.
    uint64_t acpi_root;
};

// Where the loader put what it allocated, as physical addresses. None of it is in the map.
struct Handover {
    uint32_t numcores;    // cores started (the BIOS loader starts at most 255)
    uint8_t protocol;     // the bootboot `protocol` byte
    uint64_t bootboot;    // the bootboot page, mapped read-only at kBootbootVirt
    uint64_t environment; // the environment page, mapped read-only at kEnvironmentVirt
    uint64_t tables;      // its page tables, the PML4 first (CR3 at entry)
    uint64_t table_pages;
    uint64_t stacks;      // page k holds the 1 KiB stacks of cores 4k..4k+3 ...
    uint64_t stack_pages; // ... and is mapped at 2^64 - (k + 1) * 4 KiB
    uint64_t initrd;      // the initrd (bootboot.initrd_ptr)
    uint64_t initrd_size; // as reported: rounded up to whole pages
    uint64_t kernel;      // the copy of the kernel segment, mapped at kKernelVirt
    uint64_t kernel_size; // code + data + bss, rounded up to whole pages
    bool kernel_writable; // whether the loader maps the segment writable
};

enum class LoaderError {
    None,
    BadCoreCount,      // no cores, or more than the protocol's 256
    NoMemoryMap,       // the firmware reported no memory at all
    TooManyEntries,    // the BOOTBOOT map would not fit its page
    FirstAreaTooSmall, // the entry at address 0 is shorter than what the BIOS loader takes
    NoInitrdArea,      // no usable entry big enough for the initrd area
    InitrdAreaTooHigh, // the BIOS loader's initrd area would start above 4 GiB
    InitrdAreaTooLow,  // ... or where it keeps the core stacks
    InitrdTooBig,      // more than the protocol's 16 MiB
    KernelEmpty,       // a segment with no file bytes
    KernelTooBig,      // code + data + bss not below the level 1 limit
    KernelOutsideArea, // the initrd and the kernel copy do not fit the area chosen for them
};

constexpr const char* describe(LoaderError e) {
    switch (e) {
    case LoaderError::None:
        return "no error";
    case LoaderError::BadCoreCount:
        return "the core count must be between 1 and 256";
    case LoaderError::NoMemoryMap:
        return "the memory map has no entries";
    case LoaderError::TooManyEntries:
        return "the memory map has more entries than the bootboot page holds";
    case LoaderError::FirstAreaTooSmall:
        return "the entry at address 0 is shorter than the 80 KiB (0x14000) the BIOS loader keeps "
               "for itself";
    case LoaderError::InitrdAreaTooHigh:
        return "the first usable entry of at least 18 MiB starts above 4 GiB, where the BIOS "
               "loader cannot put the initrd";
    case LoaderError::InitrdAreaTooLow:
        return "the first usable entry of at least 18 MiB starts below 0x54000, where the BIOS "
               "loader keeps the core stacks (an E820 map has RAM below 640 KiB as an entry of "
               "its own)";
    case LoaderError::NoInitrdArea:
        return "no usable entry is large enough for what the loader allocates (the BIOS loader "
               "needs one of at least 18 MiB for the initrd and the kernel, the UEFI loader room "
               "below 4 GiB for them and its page tables)";
    case LoaderError::InitrdTooBig:
        return "the initrd is larger than the 16 MiB the protocol allows";
    case LoaderError::KernelEmpty:
        return "the kernel segment has no bytes in the file";
    case LoaderError::KernelTooBig:
        return "the kernel's code, data and bss are not below 0x1BE000 bytes (BOOTBOOT level 1)";
    case LoaderError::KernelOutsideArea:
        return "the initrd and the kernel copy do not fit the usable entry chosen for them";
    }
    return "unknown error";
}

inline constexpr size_t kNoEntry = ~size_t{0};

struct LoaderStatus {
    LoaderError error = LoaderError::None;
    size_t entry = kNoEntry; // the E820 entry (index in the firmware's order) it is about

    constexpr bool ok() const { return error == LoaderError::None; }
};

// The BOOTBOOT map a model writes, at most `capacity` entries.
struct MmapOut {
    bootboot_abi::MmapEntry* entries;
    size_t capacity;
    size_t count;
};

} // namespace firmware
