#pragma once

// Normalising a firmware memory map into the frames the kernel may use.
//
// Pure code on caller-provided arrays: no heap, no HAL calls, no logging. The core feeds it
// the BOOTBOOT map; the simulator's input side feeds it E820 entries (hal_sim::usable_pages).
// The rules, in order (docs/memory.md has the reasoning):
//   1. entries that are empty, or E820 entries whose ACPI 3.0 extended attributes have bit 0
//      clear, are ignored; unknown types count as Reserved;
//   2. an entry reaching beyond 2^52 is an error (Error::AddressOutOfRange);
//   3. entries are sorted and overlaps resolved: each byte gets the most restrictive type of
//      the entries covering it (the order of MemoryType below);
//   4. kernel reservations (reserve()) turn Usable bytes into Kernel bytes, and nothing else:
//      reserving a hole or an ACPI area changes nothing;
//   5. a 4 KiB frame is usable when every byte of it is Usable: usable runs are page-aligned
//      inward, and a frame touched by anything else (or by nothing) is not usable.

#include <core/lib/result.hpp>
#include <core/mm/frame.hpp>

#include <hal/bootboot.hpp>
#include <hal/firmware/e820.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core::mm {

// Kinds of physical memory, in increasing order of restrictiveness: where entries overlap,
// the larger value wins.
enum class MemoryType : uint8_t {
    Usable = 0, // RAM the kernel may allocate
    // RAM the kernel keeps for itself (page 0, its image, the boot structures, the initrd).
    // Only ever over Usable: it is RAM, but not the allocator's.
    Kernel = 1,
    AcpiReclaimable = 2, // ACPI tables: RAM again once the kernel has read them
    AcpiNvs = 3,         // ACPI non-volatile storage: firmware state kept across sleep
    Reserved = 4,        // not the kernel's: firmware, MMIO windows, unknown types
    Bad = 5,             // defective RAM (E820 type 5): never touched at all
};
inline constexpr size_t kMemoryTypeCount = 6;

const char* memory_type_name(MemoryType type);

// E820 type codes: 1 usable, 2 reserved, 3 ACPI reclaimable, 4 ACPI NVS, 5 bad; any other
// value is reserved.
MemoryType e820_memory_type(uint32_t e820_type);

// BOOTBOOT types: free is usable, ACPI is treated as NVS (the protocol does not say which
// kind), used and MMIO are reserved.
MemoryType bootboot_memory_type(bootboot_abi::MmapType type);

// x86_64 physical addresses have at most 52 bits.
inline constexpr uint64_t kPhysicalAddressLimit = uint64_t{1} << 52;

// One piece of the normalised map: [base, end), one type, disjoint from and not touching a
// piece of the same type.
struct MemoryRegion {
    uint64_t base;
    uint64_t end;
    MemoryType type;
};

struct MapSummary {
    size_t regions = 0;         // MemoryRegions written
    size_t areas = 0;           // FrameAreas written
    uint64_t usable_frames = 0; // frames in those areas
    // Frames that would be usable without the kernel's reservations (the RAM the firmware
    // offers); the difference is what the reservations took.
    uint64_t ram_frames = 0;

    constexpr uint64_t reserved_frames() const { return ram_frames - usable_frames; }
};

// Scratch space: two per entry added. Opaque to callers.
struct MapEvent {
    uint64_t address;
    MemoryType type;
    int8_t delta; // +1 where an entry starts, -1 where it ends
};

class MapNormalizer {
public:
    // `events` must hold 2 per entry that will be added.
    constexpr MapNormalizer(MapEvent* events, size_t capacity)
        : m_events(events), m_capacity(capacity) {}

    // Adds one entry. Empty entries are dropped. Errors: AddressOutOfRange (beyond 2^52, or
    // wrapping), CapacityExceeded (the event array is full).
    [[nodiscard]] Result<void> add(uint64_t base, uint64_t length, MemoryType type);
    // Also drops an entry whose extended attributes say it is to be ignored.
    [[nodiscard]] Result<void> add_e820(const firmware::E820Entry& entry);
    [[nodiscard]] Result<void> add_bootboot(const bootboot_abi::MmapEntry& entry);
    // Reserves [base, base + length) for the kernel, wherever it is usable.
    [[nodiscard]] Result<void> reserve(uint64_t base, uint64_t length) {
        return add(base, length, MemoryType::Kernel);
    }

    // Resolves what was added into `regions` (every typed piece, sorted) and `areas` (the
    // usable frames, sorted, never touching). Capacities of 2 per entry added always suffice
    // for both; a smaller array that overflows is Error::CapacityExceeded. O(n log n) in the
    // entries, nothing on the stack that grows with them. May be called again after more adds.
    [[nodiscard]] Result<MapSummary> normalize(MemoryRegion* regions, size_t region_capacity,
                                               FrameArea* areas, size_t area_capacity);

    size_t events() const { return m_count; }

private:
    MapEvent* m_events;
    size_t m_capacity;
    size_t m_count = 0;
};

} // namespace core::mm
