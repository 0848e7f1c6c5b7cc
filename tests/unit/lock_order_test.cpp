// The lock-order graph (core/sync/lock_order.hpp): an inversion is caught the first time both
// orders are seen, directly or through other locks; orders seen again, or consistent ones, are
// not inversions.

#include <core/sync/lock_order.hpp>

#include <gtest/gtest.h>

#include <vector>

namespace {

using core::LockOrderGraph;

uint64_t bits(std::initializer_list<uint32_t> locks) {
    uint64_t b = 0;
    for (uint32_t l : locks) {
        b |= uint64_t{1} << l;
    }
    return b;
}

TEST(LockOrder, TheSameOrderAgainIsFine) {
    LockOrderGraph g;
    EXPECT_EQ(g.take(bits({0}), 1), LockOrderGraph::kNone);
    EXPECT_EQ(g.take(bits({0}), 1), LockOrderGraph::kNone);
    EXPECT_TRUE(g.reaches(0, 1));
    EXPECT_FALSE(g.reaches(1, 0));
}

TEST(LockOrder, TheOppositeOrderIsAnInversionTheFirstTimeItIsSeen) {
    LockOrderGraph g;
    EXPECT_EQ(g.take(bits({0}), 1), LockOrderGraph::kNone);
    EXPECT_EQ(g.take(bits({1}), 0), 1u);
    // The graph keeps the first order: the inverting edge was not added.
    EXPECT_FALSE(g.reaches(1, 0));
}

TEST(LockOrder, AnInversionThroughOtherLocksIsFoundWithItsPath) {
    LockOrderGraph g;
    EXPECT_EQ(g.take(bits({3}), 7), LockOrderGraph::kNone);  // 3 then 7
    EXPECT_EQ(g.take(bits({7}), 63), LockOrderGraph::kNone); // 7 then 63
    EXPECT_EQ(g.take(bits({63}), 3), 63u);                   // 63 then 3: a cycle of three
    uint32_t path[8];
    ASSERT_EQ(g.path(3, 63, path, 8), 3u);
    EXPECT_EQ(path[0], 3u);
    EXPECT_EQ(path[1], 7u);
    EXPECT_EQ(path[2], 63u);
    EXPECT_EQ(g.path(3, 63, path, 2), 3u) << "the length, even when the path is cut short";
    EXPECT_EQ(g.path(63, 3, path, 8), 0u);
}

TEST(LockOrder, TakingALockAlreadyHeldIsAnInversion) {
    LockOrderGraph g;
    EXPECT_EQ(g.take(bits({5}), 5), 5u);
}

TEST(LockOrder, ConsistentOrdersAmongManyLocksAreNeverInversions) {
    LockOrderGraph g;
    // Always in increasing order, whatever subset is held.
    for (uint32_t taking = 1; taking < 64; ++taking) {
        for (uint32_t low = 0; low < taking; low += 7) {
            EXPECT_EQ(g.take(bits({low, taking / 2}) & ((uint64_t{1} << taking) - 1), taking),
                      LockOrderGraph::kNone);
        }
    }
    EXPECT_TRUE(g.reaches(0, 63));
    EXPECT_FALSE(g.reaches(63, 0));
}

TEST(LockOrder, OnlyTheHeldLockThatInvertsIsReportedAndTheOthersStillRecord) {
    LockOrderGraph g;
    EXPECT_EQ(g.take(bits({2}), 1), LockOrderGraph::kNone); // 2 then 1
    // Holding 0 and 2, taking 1: 2 then 1 is known; 0 then 1 is new and fine.
    EXPECT_EQ(g.take(bits({0, 2}), 1), LockOrderGraph::kNone);
    EXPECT_TRUE(g.reaches(0, 1));
    // Holding 1, taking 0: 0 then 1 was seen.
    EXPECT_EQ(g.take(bits({1}), 0), 1u);
}

} // namespace
