#include "loader/acpi.hpp"

#include "loader/bytes.hpp"

namespace loader::acpi {

namespace {

bool sums_to_zero(const uint8_t* p, size_t n) {
    uint8_t sum = 0;
    for (size_t i = 0; i < n; ++i) {
        sum = static_cast<uint8_t>(sum + p[i]);
    }
    return sum == 0;
}

} // namespace

uint32_t table_length(const uint8_t* table) {
    return load_le32(table + 4);
}

bool has_signature(const uint8_t* table, const char (&signature)[5]) {
    for (size_t i = 0; i < 4; ++i) {
        if (table[i] != static_cast<uint8_t>(signature[i])) {
            return false;
        }
    }
    return true;
}

const char* describe(Error e) {
    switch (e) {
    case Error::None:
        return "no error";
    case Error::BadLength:
        return "an ACPI table's length is shorter than its header or runs past the memory";
    case Error::BadChecksum:
        return "an ACPI table's checksum does not hold";
    case Error::BadEntry:
        return "a MADT entry is too short or runs past the table";
    }
    return "unknown error";
}

namespace {

// The table's length, checked against its header, the bytes available and its checksum.
Error checked_length(const uint8_t* table, size_t avail, size_t* length) {
    if (avail < kTableHeaderSize) {
        return Error::BadLength;
    }
    uint32_t n = table_length(table);
    if (n < kTableHeaderSize || n > avail) {
        return Error::BadLength;
    }
    if (!sums_to_zero(table, n)) {
        return Error::BadChecksum;
    }
    *length = n;
    return Error::None;
}

} // namespace

Error root_entries(const uint8_t* root, size_t avail, uint64_t* out, size_t capacity,
                   size_t* count) {
    *count = 0;
    size_t length = 0;
    Error err = checked_length(root, avail, &length);
    if (err != Error::None) {
        return err;
    }
    size_t width = has_signature(root, "XSDT") ? 8 : 4;
    size_t n = (length - kTableHeaderSize) / width;
    for (size_t i = 0; i < n; ++i) {
        const uint8_t* p = root + kTableHeaderSize + i * width;
        if (i < capacity) {
            out[i] = width == 8 ? load_le64(p) : load_le32(p);
        }
    }
    *count = n;
    return Error::None;
}

Error madt_apic_ids(const uint8_t* madt, size_t avail, uint8_t* out, size_t capacity, size_t* count,
                    size_t* skipped) {
    // After the header: the local APIC address (4 bytes) and flags (4 bytes).
    constexpr size_t kFirstEntry = kTableHeaderSize + 8;
    constexpr uint8_t kLocalApic = 0;
    constexpr size_t kLocalApicSize = 8; // type, length, processor UID, APIC ID, flags (4)
    constexpr uint32_t kEnabled = 1u << 0;
    constexpr uint8_t kBroadcastId = 0xFF;

    *count = 0;
    if (skipped != nullptr) {
        *skipped = 0;
    }
    size_t length = 0;
    Error err = checked_length(madt, avail, &length);
    if (err != Error::None) {
        return err;
    }
    if (length < kFirstEntry) {
        return Error::BadLength;
    }
    size_t n = 0;
    for (size_t off = kFirstEntry; off < length;) {
        if (length - off < 2) {
            return Error::BadEntry;
        }
        uint8_t type = madt[off];
        uint8_t size = madt[off + 1];
        if (size < 2 || size > length - off) {
            return Error::BadEntry;
        }
        if (type == kLocalApic) {
            if (size < kLocalApicSize) {
                return Error::BadEntry;
            }
            if ((load_le32(madt + off + 4) & kEnabled) != 0 && madt[off + 3] != kBroadcastId) {
                if (n < capacity) {
                    out[n] = madt[off + 3];
                }
                ++n;
            } else if (skipped != nullptr) {
                ++*skipped;
            }
        }
        off += size;
    }
    *count = n;
    return Error::None;
}

} // namespace loader::acpi
