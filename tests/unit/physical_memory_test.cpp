#include "test_support.hpp"

#include <hal_sim/error.hpp>
#include <hal_sim/physical_memory.hpp>

#include <gtest/gtest.h>

#include <cstring>

namespace {

using firmware::E820Entry;
using hal_sim::PhysRange;

uint64_t frames(const std::vector<PhysRange>& ranges) {
    uint64_t n = 0;
    for (const auto& r : ranges) {
        n += (r.end - r.base) / 4096;
    }
    return n;
}

TEST(PhysicalMemory, UsableFramesOfTheQemuFixtures) {
    // The counts shared/fixtures/e820/README.md gives.
    EXPECT_EQ(frames(hal_sim::usable_pages(duet::test::fixture("qemu-q35-2g"))), 524158u);
    EXPECT_EQ(frames(hal_sim::usable_pages(duet::test::fixture("qemu-q35-2g-kvm"))), 524158u);
    EXPECT_EQ(frames(hal_sim::usable_pages(duet::test::fixture("qemu-q35-8g"))), 2097022u);
    EXPECT_EQ(frames(hal_sim::usable_pages(duet::test::fixture("qemu-pc-2g"))), 524159u);
}

TEST(PhysicalMemory, AFrameTouchedByAnythingElseIsNotUsable) {
    std::vector<E820Entry> map = {
        {0x1000, 0x10000, 1, 1},
        {0x5800, 0x100, 2, 1},   // a reserved sliver inside usable memory costs its whole page
        {0x20000, 0x3800, 1, 1}, // unaligned end: the last partial page is lost
    };
    auto ranges = hal_sim::usable_pages(map);
    ASSERT_EQ(ranges.size(), 3u);
    EXPECT_EQ(ranges[0], (PhysRange{0x1000, 0x5000}));
    EXPECT_EQ(ranges[1], (PhysRange{0x6000, 0x11000}));
    EXPECT_EQ(ranges[2], (PhysRange{0x20000, 0x23000}));
}

TEST(PhysicalMemory, UsableRamIsReadableAndWritable) {
    hal_sim::PhysicalMemory ram(duet::test::fixture("qemu-q35-8g"));
    EXPECT_TRUE(ram.is_usable(0x100000, 4096));
    EXPECT_TRUE(ram.is_usable(0x100000000, 0x180000000));
    EXPECT_FALSE(ram.is_usable(0x9f000, 0x2000));
    EXPECT_FALSE(ram.is_usable(0xb0000000, 1));
    auto* p = static_cast<volatile uint64_t*>(ram.at(0x17ffff000));
    *p = 0x1234;
    EXPECT_EQ(*p, 0x1234u);
    EXPECT_EQ(ram.phys_of(const_cast<uint64_t*>(p)), 0x17ffff000u);
}

TEST(PhysicalMemoryDeathTest, ReservedRamIsNotAccessible) {
    hal_sim::PhysicalMemory ram(duet::test::fixture("qemu-q35-2g"));
    EXPECT_DEATH(
        {
            auto* p = static_cast<volatile uint8_t*>(ram.at(0xb0000000));
            *p = 1;
        },
        "");
}

TEST(PhysicalMemory, MapsItCannotModelAreConfigErrors) {
    std::vector<E820Entry> none = {{0x0, 0x1000, 2, 1}};
    EXPECT_THROW(hal_sim::PhysicalMemory{none}, hal_sim::ConfigError);
    std::vector<E820Entry> huge = {{0x0, 0x100000, 1, 1}, {1ull << 50, 0x1000, 2, 1}};
    EXPECT_THROW(hal_sim::PhysicalMemory{huge}, hal_sim::ConfigError);
}

} // namespace
