#pragma once

// Finding the ACPI root table through the RSDP, as BOOTBOOT's arch.acpi_ptr wants it.
// Pure: the caller passes the memory to scan.

#include <stddef.h>
#include <stdint.h>

namespace loader::acpi {

// Bytes of a revision 0 RSDP (covered by its checksum) and of a revision 2 one.
inline constexpr size_t kRsdpV1Size = 20;
inline constexpr size_t kRsdpV2Size = 36;

// The offset of the first valid RSDP ("RSD PTR ", checksum over 20 bytes) on a 16-byte
// boundary of `mem` (which must itself be 16-byte aligned), or `len` if there is none.
size_t find_rsdp(const uint8_t* mem, size_t len);

struct RootTables {
    uint32_t rsdt; // always present
    uint64_t xsdt; // 0 unless the RSDP is revision 2 or later and its extended checksum holds
};

// Reads a valid RSDP; `avail` is how many bytes are readable from `rsdp`.
RootTables root_tables(const uint8_t* rsdp, size_t avail);

} // namespace loader::acpi
