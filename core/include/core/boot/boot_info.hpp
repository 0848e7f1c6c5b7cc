#pragma once

// Reading the BOOTBOOT memory map: validation and the one log format both machines print.

#include <hal/bootboot.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core {

enum class BootInfoError {
    None,
    BadMagic,       // not a bootboot page
    BadSize,        // header.size is not 128 + 16 * n within one page
    NoCores,        // numcores is 0
    UnsortedMap,    // the protocol promises entries sorted by address
    OverflowingMap, // an entry wraps around the 64-bit address space
};

const char* describe(BootInfoError e);

[[nodiscard]] BootInfoError validate_boot_info(const bootboot_abi::Info& info);

const char* mmap_type_name(bootboot_abi::MmapType type);

struct MmapTotals {
    uint64_t free_bytes = 0;
    uint64_t entries = 0;
};

// Logs every entry of the map as "mmap: [mem 0x...-0x...] type size" and a summary line.
MmapTotals log_memory_map(const bootboot_abi::Info& info);

} // namespace core
