#pragma once

// Where the upstream BIOS loader finds the firmware's tables below 1 MiB, which become the
// bootboot header's acpi_ptr, smbi_ptr and mp_ptr: the same scans, with the same results, so
// that Duet's loader hands over the same pointers (and firmware::bios::build() retypes the same
// memory map entry for the ACPI root table).
//
//   - the RSDP: the first 16-byte paragraph that starts with "RSD PTR ", from the EBDA's
//     segment (or 0xE0000 if the EBDA lies above it) up to 0xA0000, then 0xD0000-0xFFFFF.
//     No checksum is checked. acpi_ptr is the XSDT address in it if those 8 bytes are not 0,
//     whatever the revision says (a revision 0 RSDP has 20 bytes, so that is whatever follows
//     it), else the RSDT address;
//   - SMBIOS and MP: every paragraph from 0xE0000 to 0xFFFFF is compared with "_SM_" and
//     "_MP_"; the last of each wins. The loader keeps the paragraph's segment in AX and shifts
//     EAX left by 4 on a hit, so the high half of EAX keeps bits from the previous hit: once
//     "_SM_" was found at 0xF5A00, "_MP_" at 0xF5BA0 is reported as 0xFF5BA0 (measured under
//     SeaBIOS).
//
// Pure: it reads memory through the caller's read32(physical address).

#include <stdint.h>

namespace loader::bios_tables {

struct Found {
    uint64_t rsdp;      // where the RSDP is, 0 if nowhere
    uint64_t acpi_root; // bootboot.arch.acpi_ptr: 0 without an RSDP
    uint64_t smbios;    // bootboot.arch.smbi_ptr
    uint64_t mp;        // bootboot.arch.mp_ptr
};

// The four bytes of a signature as a little-endian word.
constexpr uint32_t word(const char (&s)[5]) {
    return uint32_t{static_cast<uint8_t>(s[0])} | (uint32_t{static_cast<uint8_t>(s[1])} << 8) |
           (uint32_t{static_cast<uint8_t>(s[2])} << 16) |
           (uint32_t{static_cast<uint8_t>(s[3])} << 24);
}

inline constexpr uint32_t kVideoSegment = 0xA000; // skipped up to ...
inline constexpr uint32_t kOptionRomSegment = 0xD000;
inline constexpr uint32_t kBiosSegment = 0xE000;

// `ebda_segment` is the EBDA's segment (the BIOS data area's word at 0x40E; 0 for none).
// `read32(pa)` returns the little-endian 32-bit word at physical address pa, pa < 1 MiB.
template <typename Read32>
constexpr Found scan(uint32_t ebda_segment, Read32 read32) {
    Found f{};
    uint32_t seg = (ebda_segment < kBiosSegment ? ebda_segment : kBiosSegment) & 0xFFFF;
    do {
        uint64_t pa = uint64_t{seg} << 4;
        if (read32(pa) == word("RSD ") && read32(pa + 4) == word("PTR ")) {
            f.rsdp = pa;
            uint64_t xsdt = uint64_t{read32(pa + 24)} | (uint64_t{read32(pa + 28)} << 32);
            f.acpi_root = xsdt != 0 ? xsdt : read32(pa + 16);
            break;
        }
        seg = (seg + 1) & 0xFFFF;
        if (seg == kVideoSegment) {
            seg = kOptionRomSegment;
        }
    } while (seg != 0);

    uint32_t eax = kBiosSegment;
    do {
        uint32_t ax = eax & 0xFFFF;
        uint32_t w = read32(uint64_t{ax} << 4);
        if (w == word("_SM_")) {
            eax <<= 4;
            f.smbios = eax;
        } else if (w == word("_MP_")) {
            eax <<= 4;
            f.mp = eax;
        }
        eax = (eax & 0xFFFF'0000u) | ((ax + 1) & 0xFFFF);
    } while ((eax & 0xFFFF) != 0);
    return f;
}

} // namespace loader::bios_tables
