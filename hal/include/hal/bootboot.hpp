#pragma once

// The BOOTBOOT information block as the kernel sees it (protocol level 1, x86_64).
// Written from the protocol's published offsets; see shared/design/BOOTBOOT.md.
// Used by the core (to read it), by Duet's QEMU loader and by the simulator's firmware
// (to write it), so it depends on nothing but the compiler's freestanding headers.

#include <stddef.h>
#include <stdint.h>

namespace bootboot_abi {

inline constexpr uint8_t kMagic[4] = {'B', 'O', 'O', 'T'};

// The `protocol` byte: level in bits 0-1, loader kind in bits 2-6, big-endian flag in bit 7.
inline constexpr uint8_t kProtocolStatic = 1;
inline constexpr uint8_t kLoaderBios = 0 << 2;

// Fixed virtual addresses of a level 1 kernel (the linker script defines the same symbols).
inline constexpr uint64_t kMmioVirt = 0xFFFF'FFFF'F800'0000;
inline constexpr uint64_t kFramebufferVirt = 0xFFFF'FFFF'FC00'0000;
inline constexpr uint64_t kBootbootVirt = 0xFFFF'FFFF'FFE0'0000;
inline constexpr uint64_t kEnvironmentVirt = 0xFFFF'FFFF'FFE0'1000;
inline constexpr uint64_t kKernelVirt = 0xFFFF'FFFF'FFE0'2000;

// Core i starts with RSP = -i * kInitStackSize; the BIOS loader's stacks have no guard pages.
inline constexpr uint64_t kInitStackSize = 1024;
// Code + data + bss of a level 1 kernel must stay below this (2 MiB - 256 KiB - 8 KiB).
inline constexpr uint64_t kMaxKernelSize = 0x1BE000;
inline constexpr uint64_t kMaxInitrdSize = 16ull << 20;
inline constexpr uint64_t kPageSize = 4096;
inline constexpr size_t kEnvironmentSize = 4096;
inline constexpr uint32_t kMaxCores = 256;

enum class MmapType : uint8_t { Used = 0, Free = 1, Acpi = 2, Mmio = 3 };

// One memory map entry: the type lives in the low 4 bits of `size`.
struct MmapEntry {
    uint64_t ptr;
    uint64_t size;

    constexpr uint64_t base() const { return ptr; }
    constexpr uint64_t length() const { return size & ~uint64_t{0xF}; }
    // Unknown types are treated as used, as the protocol says.
    constexpr MmapType type() const {
        uint8_t t = size & 0xF;
        return t <= 3 ? static_cast<MmapType>(t) : MmapType::Used;
    }
    static constexpr MmapEntry make(uint64_t base, uint64_t length, MmapType type) {
        return {base, (length & ~uint64_t{0xF}) | static_cast<uint64_t>(type)};
    }
};
static_assert(sizeof(MmapEntry) == 16);

struct X86Pointers {
    uint64_t acpi_ptr; // the RSDT or XSDT itself, not the RSDP
    uint64_t smbi_ptr;
    uint64_t efi_ptr;
    uint64_t mp_ptr;
    uint64_t unused[4];
};

// The first 128 bytes of the bootboot page; the memory map follows and fills the page.
struct Header {
    uint8_t magic[4];
    uint32_t size; // 128 + 16 * number of memory map entries
    uint8_t protocol;
    uint8_t fb_type;
    uint16_t numcores;
    uint16_t bspid;
    int16_t timezone;
    uint8_t datetime[8]; // BCD: century, year, month, day, hour, minute, second, DST flag
    uint64_t initrd_ptr;
    uint64_t initrd_size;
    uint64_t fb_ptr;
    uint32_t fb_size;
    uint32_t fb_width;
    uint32_t fb_height;
    uint32_t fb_scanline;
    X86Pointers arch;
};
static_assert(sizeof(Header) == 128);
static_assert(offsetof(Header, initrd_ptr) == 24);
static_assert(offsetof(Header, arch) == 64);

inline constexpr size_t kMaxMmapEntries = (kPageSize - sizeof(Header)) / sizeof(MmapEntry);

// The whole bootboot page.
struct Info {
    Header header;
    MmapEntry mmap[kMaxMmapEntries];

    constexpr size_t mmap_count() const {
        if (header.size < sizeof(Header)) {
            return 0;
        }
        size_t n = (header.size - sizeof(Header)) / sizeof(MmapEntry);
        return n < kMaxMmapEntries ? n : kMaxMmapEntries;
    }
};
static_assert(sizeof(Info) == kPageSize);

} // namespace bootboot_abi
