#pragma once

// Finding the ACPI root table through the RSDP, as BOOTBOOT's arch.acpi_ptr wants it, and the
// processors the MADT lists, which become BOOTBOOT's cores.
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

// Every system description table starts with this header: signature, length, and so on.
inline constexpr size_t kTableHeaderSize = 36;

// The `length` field of the table header at `table` (which must have kTableHeaderSize bytes).
uint32_t table_length(const uint8_t* table);

// Whether the table at `table` carries `signature` (four characters).
bool has_signature(const uint8_t* table, const char (&signature)[5]);

enum class Error {
    None,
    BadLength,   // the table's length field is below its header or beyond the bytes available
    BadChecksum, // the table's bytes do not sum to zero
    BadEntry,    // a MADT entry is shorter than two bytes or runs past the table
};

const char* describe(Error e);

// The tables an RSDT (4-byte pointers) or XSDT (8-byte pointers) lists, in order: up to
// `capacity` go to `out`, `*count` is how many there are in all. `root` points at the RSDT or
// XSDT, with `avail` bytes readable.
Error root_entries(const uint8_t* root, size_t avail, uint64_t* out, size_t capacity,
                   size_t* count);

// The local APIC IDs of the enabled processors the MADT lists (type 0 entries with flag bit 0
// set), in MADT order, as BOOTBOOT numbers its cores: up to `capacity` go to `out`, `*count`
// is how many there are in all. x2APIC entries (type 9) are not read: BOOTBOOT has no x2APIC.
Error madt_apic_ids(const uint8_t* madt, size_t avail, uint8_t* out, size_t capacity,
                    size_t* count);

} // namespace loader::acpi
