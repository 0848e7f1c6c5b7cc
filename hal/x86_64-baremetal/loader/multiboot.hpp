#pragma once

// Reading what a Multiboot (version 1) boot loader hands over: the information structure, the
// module list and the memory map. Pure: every function reads only the bytes it is given.

#include <hal/firmware/e820.hpp>

#include <stddef.h>
#include <stdint.h>

namespace loader::multiboot {

// EAX at entry when a Multiboot boot loader started us.
inline constexpr uint32_t kBootloaderMagic = 0x2BAD'B002;

// Information structure flags.
inline constexpr uint32_t kInfoModules = 1u << 3;
inline constexpr uint32_t kInfoMmap = 1u << 6;

// Bytes of the information structure read here (up to and including mmap_addr).
inline constexpr size_t kInfoSize = 52;
// One module list entry: mod_start, mod_end, string, reserved.
inline constexpr size_t kModuleSize = 16;

struct Info {
    uint32_t flags;
    uint32_t mods_count;
    uint32_t mods_addr;
    uint32_t mmap_length;
    uint32_t mmap_addr;
};

Info read_info(const uint8_t* info);

struct Module {
    uint32_t start;
    uint32_t end; // one past the last byte
};

Module read_module(const uint8_t* entry);

enum class Error {
    None,
    BadEntry,       // an entry's size field is too small or runs past the buffer
    TooManyEntries, // more entries than the caller has room for
};

const char* describe(Error e);

// Converts the memory map buffer (entries led by a 4-byte size field that does not count
// itself) into E820 entries. Multiboot has no extended attributes, so every entry is enabled.
Error read_mmap(const uint8_t* buf, size_t len, firmware::E820Entry* out, size_t capacity,
                size_t* count);

} // namespace loader::multiboot
