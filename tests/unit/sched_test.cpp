// The scheduler's pure parts: the run queue's lists and bitmap, and the latency histograms'
// buckets. Both sit on the switch path in hand-tuned form; these tests hold them to their
// contract.

#include <core/sched/run_queue.hpp>
#include <core/sched/scheduler.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace {

using core::sched::Histogram;
using core::sched::RunLink;
using core::sched::RunQueue;

TEST(RunQueueTest, PopsTheHighestPriorityFirstAndEachLevelInOrder) {
    std::vector<RunLink> t(6);
    const uint8_t priorities[] = {2, 5, 2, 0, 5, 2};
    RunQueue q(1);
    for (size_t i = 0; i < t.size(); ++i) {
        t[i].priority = priorities[i];
        q.push_back(&t[i]);
    }
    EXPECT_EQ(q.count(), 6u);
    EXPECT_EQ(q.top_priority(), 5);
    const size_t order[] = {1, 4, 0, 2, 5, 3};
    for (size_t i : order) {
        ASSERT_EQ(q.check(), nullptr);
        RunLink* l = q.pop();
        ASSERT_EQ(l, &t[i]);
        EXPECT_FALSE(l->queued);
        EXPECT_EQ(l->next, nullptr);
        EXPECT_EQ(l->prev, nullptr);
    }
    EXPECT_TRUE(q.empty());
    EXPECT_EQ(q.top_priority(), -1);
    EXPECT_EQ(q.pop(), nullptr);
    EXPECT_EQ(q.check(), nullptr);
}

TEST(RunQueueTest, APoppedLevelCanBeRefilledAndMixesWithRemoveAndPushFront) {
    std::vector<RunLink> t(4);
    RunQueue q(0);
    for (RunLink& l : t) {
        q.push_back(&l); // all at the default priority
    }
    ASSERT_EQ(q.pop(), &t[0]);
    q.remove(&t[2]); // from the middle
    ASSERT_EQ(q.check(), nullptr);
    q.push_front(&t[0]);
    q.push_back(&t[2]);
    ASSERT_EQ(q.check(), nullptr);
    const size_t order[] = {0, 1, 3, 2};
    for (size_t i : order) {
        ASSERT_EQ(q.pop(), &t[i]);
        ASSERT_EQ(q.check(), nullptr);
    }
    // Emptied by pop(): the level's tail must be gone too, or this push would link to it.
    q.push_back(&t[3]);
    EXPECT_EQ(q.check(), nullptr);
    EXPECT_EQ(q.pop(), &t[3]);
    EXPECT_EQ(q.check(), nullptr);
}

TEST(HistogramTest, EveryValueLandsInTheBucketWhoseBoundsHoldIt) {
    std::vector<uint64_t> values;
    for (uint64_t v = 0; v < 4096; ++v) {
        values.push_back(v);
    }
    for (unsigned shift = 12; shift < 64; ++shift) {
        uint64_t p = uint64_t{1} << shift;
        for (uint64_t v : {p - 1, p, p + 1, p + p / 3, p + p / 16, p | (p - 1)}) {
            values.push_back(v);
        }
    }
    values.push_back(UINT64_MAX);
    for (uint64_t v : values) {
        unsigned i = Histogram::index(v);
        ASSERT_LT(i, Histogram::kBuckets) << v;
        EXPECT_LE(v, Histogram::bound(i)) << v;
        if (i > 0) {
            EXPECT_GT(v, Histogram::bound(i - 1)) << v;
        }
    }
    // The buckets tile the numbers: each begins one past where the one before it ends.
    for (unsigned i = 1; i < Histogram::kBuckets; ++i) {
        ASSERT_GT(Histogram::bound(i), Histogram::bound(i - 1)) << i;
        EXPECT_EQ(Histogram::index(Histogram::bound(i - 1) + 1), i) << i;
    }
    EXPECT_EQ(Histogram::bound(Histogram::kBuckets - 1), UINT64_MAX);
    // Within 1/16: a bucket above the exact ones spans at most 1/16 of its lower end.
    for (unsigned i = Histogram::kSub; i < Histogram::kBuckets; ++i) {
        uint64_t low = Histogram::bound(i - 1) + 1;
        EXPECT_LE(Histogram::bound(i) - low, low / 16) << i;
    }
}

TEST(HistogramTest, RecordCountsEachValueOnceAndKeepsTheLargest) {
    Histogram h;
    for (uint64_t v : {uint64_t{3}, uint64_t{3}, uint64_t{1000}, uint64_t{1} << 50}) {
        h.record(v);
    }
    EXPECT_EQ(h.total(), 4u);
    EXPECT_EQ(h.counts[3], 2u);
    EXPECT_EQ(h.counts[Histogram::index(1000)], 1u);
    EXPECT_EQ(h.max, uint64_t{1} << 50);
}

} // namespace
