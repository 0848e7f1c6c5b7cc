#pragma once

// The firmware's memory map as a PC BIOS reports it (INT 15h, EAX=E820h), which both BOOTBOOT
// loader models and Duet's QEMU loader start from. Freestanding: compiled into the loader, the
// simulator and the tests.

#include <stddef.h>
#include <stdint.h>

namespace firmware {

// One E820 entry, in the order the firmware returned it.
struct E820Entry {
    uint64_t base;
    uint64_t length;
    uint32_t type; // 1 usable, 2 reserved, 3 ACPI reclaimable, 4 ACPI NVS, 5 bad, other reserved
    uint32_t ext_attrs; // ACPI 3.0 extended attributes; an entry with bit 0 clear is ignored
};

inline constexpr uint32_t kE820Usable = 1;
inline constexpr uint32_t kE820Reserved = 2;
inline constexpr uint32_t kE820AcpiReclaim = 3;
inline constexpr uint32_t kE820AcpiNvs = 4;
inline constexpr uint32_t kE820ExtEnabled = 1; // what a 3-column map implies

// Whether an operating system that reads the extended attributes counts the entry at all.
constexpr bool e820_counts(const E820Entry& e) {
    return e.length != 0 && (e.ext_attrs & kE820ExtEnabled) != 0;
}

// The end of the entry, saturated at 2^64 - 1.
constexpr uint64_t e820_end(const E820Entry& e) {
    uint64_t end = e.base + e.length;
    return end < e.base ? ~uint64_t{0} : end;
}

} // namespace firmware
