// The QEMU loader's ACPI readers: the root table's entries and the MADT's processors, which
// become BOOTBOOT's numcores and core order (and whether the BIOS loader would broadcast).

#include "loader/acpi.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace {

using loader::acpi::Error;

// A table: signature, length and a checksum that makes every byte sum to zero.
std::vector<uint8_t> table(const char* signature, std::vector<uint8_t> body) {
    std::vector<uint8_t> t(loader::acpi::kTableHeaderSize, 0);
    for (int i = 0; i < 4; ++i) {
        t[i] = static_cast<uint8_t>(signature[i]);
    }
    t.insert(t.end(), body.begin(), body.end());
    auto n = static_cast<uint32_t>(t.size());
    for (int i = 0; i < 4; ++i) {
        t[4 + i] = static_cast<uint8_t>(n >> (8 * i));
    }
    uint8_t sum = 0;
    for (uint8_t b : t) {
        sum = static_cast<uint8_t>(sum + b);
    }
    t[9] = static_cast<uint8_t>(-sum);
    return t;
}

void put_le(std::vector<uint8_t>& v, uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i) {
        v.push_back(static_cast<uint8_t>(value >> (8 * i)));
    }
}

// A MADT body: local APIC address and flags, then the entries.
std::vector<uint8_t> madt_body(const std::vector<std::vector<uint8_t>>& entries) {
    std::vector<uint8_t> body;
    put_le(body, 0xFEE0'0000, 4);
    put_le(body, 1, 4);
    for (const auto& e : entries) {
        body.insert(body.end(), e.begin(), e.end());
    }
    return body;
}

std::vector<uint8_t> local_apic(uint8_t uid, uint8_t apic_id, uint32_t flags) {
    std::vector<uint8_t> e = {0, 8, uid, apic_id};
    put_le(e, flags, 4);
    return e;
}

TEST(LoaderAcpi, MadtListsEnabledProcessorsInOrder) {
    std::vector<uint8_t> io_apic = {1, 12, 0, 0, 0, 0, 0xC0, 0xFE, 0, 0, 0, 0};
    std::vector<uint8_t> x2apic(16, 0);
    x2apic[0] = 9;
    x2apic[1] = 16;
    auto madt = table("APIC", madt_body({local_apic(0, 0, 1), io_apic, local_apic(1, 4, 0),
                                         local_apic(2, 2, 1), x2apic, local_apic(3, 7, 3)}));
    uint8_t ids[8] = {};
    size_t n = 0;
    size_t skipped = 0;
    ASSERT_EQ(loader::acpi::madt_apic_ids(madt.data(), madt.size(), ids, 8, &n, &skipped),
              Error::None);
    ASSERT_EQ(n, 3u);
    EXPECT_EQ(ids[0], 0);
    EXPECT_EQ(ids[1], 2);
    EXPECT_EQ(ids[2], 7);
    EXPECT_EQ(skipped, 1u); // the disabled one: no broadcast start-up
}

TEST(LoaderAcpi, MadtLeavesOutTheBroadcastId) {
    auto madt = table(
        "APIC", madt_body({local_apic(0, 0, 1), local_apic(1, 0xFF, 1), local_apic(2, 1, 1)}));
    uint8_t ids[8] = {};
    size_t n = 0;
    size_t skipped = 0;
    ASSERT_EQ(loader::acpi::madt_apic_ids(madt.data(), madt.size(), ids, 8, &n, &skipped),
              Error::None);
    ASSERT_EQ(n, 2u);
    EXPECT_EQ(ids[1], 1);
    EXPECT_EQ(skipped, 1u);

    auto clean = table("APIC", madt_body({local_apic(0, 0, 1), local_apic(1, 1, 1)}));
    ASSERT_EQ(loader::acpi::madt_apic_ids(clean.data(), clean.size(), ids, 8, &n, &skipped),
              Error::None);
    EXPECT_EQ(skipped, 0u);
}

TEST(LoaderAcpi, MadtCountsBeyondCapacity) {
    std::vector<std::vector<uint8_t>> cpus;
    for (uint8_t i = 0; i < 5; ++i) {
        cpus.push_back(local_apic(i, i, 1));
    }
    auto madt = table("APIC", madt_body(cpus));
    uint8_t ids[2] = {};
    size_t n = 0;
    ASSERT_EQ(loader::acpi::madt_apic_ids(madt.data(), madt.size(), ids, 2, &n), Error::None);
    EXPECT_EQ(n, 5u);
    EXPECT_EQ(ids[1], 1);
}

TEST(LoaderAcpi, MadtRefusesBrokenTables) {
    auto madt = table("APIC", madt_body({local_apic(0, 0, 1)}));
    uint8_t ids[4];
    size_t n = 0;
    EXPECT_EQ(loader::acpi::madt_apic_ids(madt.data(), madt.size() - 1, ids, 4, &n),
              Error::BadLength);
    auto bad_sum = madt;
    bad_sum[40] ^= 1;
    EXPECT_EQ(loader::acpi::madt_apic_ids(bad_sum.data(), bad_sum.size(), ids, 4, &n),
              Error::BadChecksum);
    std::vector<uint8_t> zero_length = {0, 0};
    auto looping = table("APIC", madt_body({zero_length}));
    EXPECT_EQ(loader::acpi::madt_apic_ids(looping.data(), looping.size(), ids, 4, &n),
              Error::BadEntry);
    std::vector<uint8_t> overlong = {0, 200, 0, 0, 1, 0, 0, 0};
    auto past_end = table("APIC", madt_body({overlong}));
    EXPECT_EQ(loader::acpi::madt_apic_ids(past_end.data(), past_end.size(), ids, 4, &n),
              Error::BadEntry);
}

TEST(LoaderAcpi, RootEntriesByWidth) {
    std::vector<uint8_t> rsdt_body;
    put_le(rsdt_body, 0x7FFE'1000, 4);
    put_le(rsdt_body, 0x7FFE'2000, 4);
    auto rsdt = table("RSDT", rsdt_body);
    uint64_t out[4] = {};
    size_t n = 0;
    ASSERT_EQ(loader::acpi::root_entries(rsdt.data(), rsdt.size(), out, 4, &n), Error::None);
    ASSERT_EQ(n, 2u);
    EXPECT_EQ(out[1], 0x7FFE'2000u);

    std::vector<uint8_t> xsdt_body;
    put_le(xsdt_body, 0x1'0000'1000, 8);
    auto xsdt = table("XSDT", xsdt_body);
    ASSERT_EQ(loader::acpi::root_entries(xsdt.data(), xsdt.size(), out, 4, &n), Error::None);
    ASSERT_EQ(n, 1u);
    EXPECT_EQ(out[0], 0x1'0000'1000u);
    EXPECT_TRUE(loader::acpi::has_signature(xsdt.data(), "XSDT"));
}

} // namespace
