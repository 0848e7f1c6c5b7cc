#include "loader/acpi.hpp"

#include "loader/bytes.hpp"

namespace loader::acpi {

namespace {

constexpr char kSignature[8] = {'R', 'S', 'D', ' ', 'P', 'T', 'R', ' '};
constexpr size_t kRevision = 15;
constexpr size_t kRsdtAddress = 16;
constexpr size_t kLength = 20;
constexpr size_t kXsdtAddress = 24;

bool sums_to_zero(const uint8_t* p, size_t n) {
    uint8_t sum = 0;
    for (size_t i = 0; i < n; ++i) {
        sum = static_cast<uint8_t>(sum + p[i]);
    }
    return sum == 0;
}

bool is_rsdp(const uint8_t* p) {
    for (size_t i = 0; i < sizeof(kSignature); ++i) {
        if (p[i] != static_cast<uint8_t>(kSignature[i])) {
            return false;
        }
    }
    return sums_to_zero(p, kRsdpV1Size);
}

} // namespace

size_t find_rsdp(const uint8_t* mem, size_t len) {
    for (size_t off = 0; len >= kRsdpV1Size && off <= len - kRsdpV1Size; off += 16) {
        if (is_rsdp(mem + off)) {
            return off;
        }
    }
    return len;
}

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

Error madt_apic_ids(const uint8_t* madt, size_t avail, uint8_t* out, size_t capacity,
                    size_t* count) {
    // After the header: the local APIC address (4 bytes) and flags (4 bytes).
    constexpr size_t kFirstEntry = kTableHeaderSize + 8;
    constexpr uint8_t kLocalApic = 0;
    constexpr size_t kLocalApicSize = 8; // type, length, processor UID, APIC ID, flags (4)
    constexpr uint32_t kEnabled = 1u << 0;

    *count = 0;
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
            if ((load_le32(madt + off + 4) & kEnabled) != 0) {
                if (n < capacity) {
                    out[n] = madt[off + 3];
                }
                ++n;
            }
        }
        off += size;
    }
    *count = n;
    return Error::None;
}

RootTables root_tables(const uint8_t* rsdp, size_t avail) {
    RootTables t{load_le32(rsdp + kRsdtAddress), 0};
    if (rsdp[kRevision] < 2 || avail < kRsdpV2Size) {
        return t;
    }
    uint32_t length = load_le32(rsdp + kLength);
    if (length >= kRsdpV2Size && length <= avail && sums_to_zero(rsdp, length)) {
        t.xsdt = load_le64(rsdp + kXsdtAddress);
    }
    return t;
}

} // namespace loader::acpi
