#pragma once

// Reading the ACPI root table (RSDT or XSDT, found by loader/bios_tables.hpp) and the
// processors the MADT lists, which become BOOTBOOT's cores.
// Pure: the caller passes the memory to read.

#include <stddef.h>
#include <stdint.h>

namespace loader::acpi {

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
// set and an APIC ID other than 0xFF, the broadcast ID), in MADT order, as BOOTBOOT numbers its
// cores: up to `capacity` go to `out`, `*count` is how many there are in all. `*skipped` (if
// given) counts the type 0 entries left out: the BIOS loader starts the cores one by one
// instead of by broadcast when there are any. x2APIC entries (type 9) are not read: BOOTBOOT
// has no x2APIC.
Error madt_apic_ids(const uint8_t* madt, size_t avail, uint8_t* out, size_t capacity, size_t* count,
                    size_t* skipped = nullptr);

} // namespace loader::acpi
