// The bring-up bump allocator: pure bookkeeping, no machine needed.

#include <core/mm/bump_allocator.hpp>

#include <gtest/gtest.h>

#include <vector>

namespace {

using core::Error;
using core::mm::BumpAllocator;
using core::mm::FrameArea;
using core::mm::FrameOwner;
using hal::PhysAddr;

FrameArea area(uint64_t base, uint64_t end) {
    return {PhysAddr(base), PhysAddr(end)};
}

// q35-2g as the kernel sees it: page 0 reserved, the boot area cut out.
const std::vector<FrameArea> kAreas = {area(0x1000, 0x9f000), area(0x100000, 0x200000),
                                       area(0x140d000, 0x7ffdf000)};

TEST(BumpAllocator, StartsAt1MiBAndMovesForward) {
    BumpAllocator bump;
    ASSERT_TRUE(bump.init(kAreas.data(), kAreas.size()).ok());
    EXPECT_EQ(bump.alloc(1, FrameOwner::BootData).value().value(), 0x100000u);
    EXPECT_EQ(bump.alloc(2, FrameOwner::BootData).value().value(), 0x101000u);
    // Consecutive frames for one owner share a run.
    ASSERT_EQ(bump.run_count(), 1u);
    EXPECT_EQ(bump.runs()[0].frames, 3u);
    EXPECT_EQ(bump.alloc(1, FrameOwner::PageTables).value().value(), 0x103000u);
    EXPECT_EQ(bump.run_count(), 2u);
    // Too big for the rest of the 1 MiB area: the next area, and the rest is skipped.
    EXPECT_EQ(bump.alloc(300, FrameOwner::FrameMetadata).value().value(), 0x140d000u);
    EXPECT_EQ(bump.alloc(1, FrameOwner::BootData).value().value(), 0x140d000u + 300 * 4096);
    EXPECT_EQ(bump.frames_given(), 305u);
    EXPECT_EQ(bump.run_count(), 4u);
    for (size_t i = 1; i < bump.run_count(); ++i) {
        EXPECT_LT(bump.runs()[i - 1].base, bump.runs()[i].base);
    }
}

TEST(BumpAllocator, AlignsAndLeavesTheGapFree) {
    BumpAllocator bump;
    ASSERT_TRUE(bump.init(kAreas.data(), kAreas.size()).ok());
    ASSERT_TRUE(bump.alloc(1, FrameOwner::BootData).ok());
    auto big = bump.alloc(1, FrameOwner::BootData, 2 << 20);
    ASSERT_TRUE(big.ok());
    EXPECT_TRUE(big.value().is_aligned(2 << 20));
    EXPECT_EQ(big.value().value(), 0x1600000u);
    // The frames skipped over belong to no run.
    ASSERT_EQ(bump.run_count(), 2u);
    EXPECT_EQ(bump.frames_given(), 2u);
    EXPECT_EQ(bump.alloc(1, FrameOwner::BootData, 3 * 4096).error(), Error::InvalidArgument);
}

TEST(BumpAllocator, AFailedRequestChangesNothing) {
    BumpAllocator bump;
    ASSERT_TRUE(bump.init(kAreas.data(), kAreas.size()).ok());
    EXPECT_EQ(bump.alloc(uint64_t{1} << 30, FrameOwner::BootData).error(), Error::OutOfMemory);
    EXPECT_EQ(bump.alloc(uint64_t{1} << 62, FrameOwner::BootData).error(), Error::OutOfMemory);
    EXPECT_EQ(bump.alloc(0, FrameOwner::BootData).error(), Error::InvalidArgument);
    EXPECT_EQ(bump.alloc(1, FrameOwner::BootData).value().value(), 0x100000u);
}

TEST(BumpAllocator, BelowTheFloorOnlyIfAskedTo) {
    BumpAllocator bump;
    ASSERT_TRUE(bump.init(kAreas.data(), kAreas.size(), PhysAddr(0)).ok());
    EXPECT_EQ(bump.alloc(1, FrameOwner::BootData).value().value(), 0x1000u);
    ASSERT_TRUE(bump.init(kAreas.data(), kAreas.size(), PhysAddr(0x150000)).ok());
    EXPECT_EQ(bump.alloc(1, FrameOwner::BootData).value().value(), 0x150000u);
    ASSERT_TRUE(bump.init(kAreas.data(), kAreas.size(), PhysAddr(0x300000)).ok());
    EXPECT_EQ(bump.alloc(1, FrameOwner::BootData).value().value(), 0x140d000u);
}

TEST(BumpAllocator, RetiredMeansDone) {
    BumpAllocator bump;
    ASSERT_TRUE(bump.init(kAreas.data(), kAreas.size()).ok());
    bump.retire();
    EXPECT_EQ(bump.alloc(1, FrameOwner::BootData).error(), Error::InvalidArgument);
}

TEST(BumpAllocator, TheRunTableIsBounded) {
    BumpAllocator bump;
    ASSERT_TRUE(bump.init(kAreas.data(), kAreas.size()).ok());
    for (size_t i = 0; i < BumpAllocator::kMaxRuns; ++i) {
        auto owner = i % 2 == 0 ? FrameOwner::BootData : FrameOwner::PageTables;
        ASSERT_TRUE(bump.alloc(1, owner).ok());
    }
    EXPECT_EQ(bump.alloc(1, FrameOwner::Kernel).error(), Error::CapacityExceeded);
    // Extending the last run still works.
    EXPECT_TRUE(bump.alloc(1, FrameOwner::PageTables).ok());
}

TEST(BumpAllocator, RejectsAreasThatAreNotNormalised) {
    BumpAllocator bump;
    std::vector<FrameArea> unsorted = {area(0x200000, 0x300000), area(0x100000, 0x180000)};
    EXPECT_EQ(bump.init(unsorted.data(), 2).error(), Error::InvalidArgument);
    std::vector<FrameArea> unaligned = {area(0x100800, 0x200000)};
    EXPECT_EQ(bump.init(unaligned.data(), 1).error(), Error::InvalidArgument);
    std::vector<FrameArea> empty = {area(0x100000, 0x100000)};
    EXPECT_EQ(bump.init(empty.data(), 1).error(), Error::InvalidArgument);
}

} // namespace
