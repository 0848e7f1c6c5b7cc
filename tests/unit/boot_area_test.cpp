#include "test_support.hpp"

#include <hal/firmware/boot_area.hpp>

#include <gtest/gtest.h>

#include <vector>

namespace {

using bootboot_abi::MmapEntry;
using bootboot_abi::MmapType;
using firmware::E820Entry;
using firmware::FirmwareError;

struct Built {
    FirmwareError error;
    std::vector<MmapEntry> entries;
};

Built build(const std::vector<E820Entry>& map, uint32_t cores = 1) {
    std::vector<MmapEntry> out(bootboot_abi::kMaxMmapEntries);
    size_t n = 0;
    auto err = firmware::build_mmap(map.data(), map.size(), firmware::plan_boot_area(cores),
                                    out.data(), &n);
    out.resize(err == FirmwareError::None ? n : 0);
    return {err, out};
}

TEST(BootArea, PlanIsFixedAndContiguous) {
    auto p = firmware::plan_boot_area(1);
    EXPECT_EQ(p.kernel, 0x200000u);
    EXPECT_EQ(p.initrd, 0x400000u);
    EXPECT_EQ(p.tables, 0x1400000u);
    EXPECT_EQ(p.gdt, p.tables + 9 * 4096);
    EXPECT_EQ(p.bootboot, p.gdt + 4096);
    EXPECT_EQ(p.environment, p.bootboot + 4096);
    EXPECT_EQ(p.stacks, p.environment + 4096);
    EXPECT_EQ(p.stack_pages, 1u);
    EXPECT_EQ(p.end, 0x140d000u);
}

TEST(BootArea, FourCoresShareOneStackPage) {
    EXPECT_EQ(firmware::plan_boot_area(4).stack_pages, 1u);
    EXPECT_EQ(firmware::plan_boot_area(5).stack_pages, 2u);
    EXPECT_EQ(firmware::plan_boot_area(256).stack_pages, 64u);
    EXPECT_EQ(firmware::plan_boot_area(256).end, 0x140d000u + 63 * 4096);
}

TEST(BootArea, Q35MapGetsTheHoleCutOutOfLowRam) {
    auto map = duet::test::fixture("qemu-q35-2g");
    ASSERT_EQ(firmware::check_boot_area(map.data(), map.size(), firmware::plan_boot_area(4)),
              FirmwareError::None);
    auto b = build(map, 4);
    ASSERT_EQ(b.error, FirmwareError::None);
    std::vector<MmapEntry> expected = {
        MmapEntry::make(0x0, 0x9fc00, MmapType::Free),
        MmapEntry::make(0x9fc00, 0x400, MmapType::Used),
        MmapEntry::make(0xf0000, 0x10000, MmapType::Used),
        MmapEntry::make(0x100000, 0x100000, MmapType::Free),
        MmapEntry::make(0x140d000, 0x7ffdf000 - 0x140d000, MmapType::Free),
        MmapEntry::make(0x7ffdf000, 0x21000, MmapType::Used),
        MmapEntry::make(0xb0000000, 0x10000000, MmapType::Used),
        MmapEntry::make(0xfed1c000, 0x4000, MmapType::Used),
        MmapEntry::make(0xfffc0000, 0x40000, MmapType::Used),
        MmapEntry::make(0xfd00000000, 0x300000000, MmapType::Used),
    };
    ASSERT_EQ(b.entries.size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(b.entries[i].ptr, expected[i].ptr) << "entry " << i;
        EXPECT_EQ(b.entries[i].size, expected[i].size) << "entry " << i;
    }
}

TEST(BootArea, TypesFollowTheBiosLoader) {
    std::vector<E820Entry> map = {
        {0x0, 0x1000, 3, 1},    {0x1000, 0x1000, 4, 1},  {0x2000, 0x1000, 5, 1},
        {0x3000, 0x1000, 2, 1}, {0x4000, 0x1000, 12, 1}, {0x100000, 0x4000000, 1, 1},
    };
    auto b = build(map);
    ASSERT_EQ(b.error, FirmwareError::None);
    ASSERT_GE(b.entries.size(), 5u);
    EXPECT_EQ(b.entries[0].type(), MmapType::Acpi);
    EXPECT_EQ(b.entries[1].type(), MmapType::Acpi);
    EXPECT_EQ(b.entries[2].type(), MmapType::Used); // bad memory
    EXPECT_EQ(b.entries[3].type(), MmapType::Used);
    EXPECT_EQ(b.entries[4].type(), MmapType::Used); // unknown type
}

TEST(BootArea, SortsDropsEmptyAndDisabledEntries) {
    std::vector<E820Entry> map = {
        {0x100000, 0x4000000, 1, 1}, {0xf0000, 0x10000, 2, 1}, {0x50000, 0, 2, 1}, // empty
        {0x60000, 0x1000, 2, 0}, // ACPI 3.0: ignore this entry
        {0x0, 0x9fc00, 1, 1},
    };
    auto b = build(map);
    ASSERT_EQ(b.error, FirmwareError::None);
    ASSERT_EQ(b.entries.size(), 4u);
    EXPECT_EQ(b.entries[0].base(), 0x0u);
    EXPECT_EQ(b.entries[1].base(), 0xf0000u);
    EXPECT_EQ(b.entries[2].base(), 0x100000u);
    EXPECT_EQ(b.entries[2].length(), 0x100000u);
    EXPECT_EQ(b.entries[3].base(), firmware::plan_boot_area(1).end);
}

TEST(BootArea, RejectsMachinesWithoutRoomForTheBootArea) {
    std::vector<E820Entry> small = {{0x0, 0x9fc00, 1, 1}, {0x100000, 0xf00000, 1, 1}};
    EXPECT_EQ(firmware::check_boot_area(small.data(), small.size(), firmware::plan_boot_area(1)),
              FirmwareError::AreaNotUsable);
    std::vector<E820Entry> holed = {{0x100000, 0x8000000, 1, 1}, {0x800000, 0x1000, 2, 1}};
    EXPECT_EQ(firmware::check_boot_area(holed.data(), holed.size(), firmware::plan_boot_area(1)),
              FirmwareError::AreaNotUsable);
    std::vector<E820Entry> ok = {{0x100000, 0x8000000, 1, 1}};
    EXPECT_EQ(firmware::check_boot_area(ok.data(), ok.size(), firmware::plan_boot_area(0)),
              FirmwareError::BadCoreCount);
    EXPECT_EQ(firmware::check_boot_area(ok.data(), ok.size(), firmware::plan_boot_area(257)),
              FirmwareError::BadCoreCount);
}

TEST(BootArea, TooManyEntriesIsAnErrorNotAnOverflow) {
    std::vector<E820Entry> map;
    for (uint64_t i = 0; i < 300; ++i) {
        map.push_back({0x100000000 + i * 0x2000, 0x1000, 2, 1});
    }
    EXPECT_EQ(build(map).error, FirmwareError::TooManyEntries);
}

} // namespace
