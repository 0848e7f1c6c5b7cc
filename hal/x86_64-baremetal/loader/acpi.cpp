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
