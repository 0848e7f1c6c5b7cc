// The executor's schedules (hal_sim/schedule.hpp): `coarse` interleaves the CPUs at preemption
// points only; `random` and `pct` also at synchronisation points, where a race the machine can
// show must be able to happen. Each test boots a small kernel of its own.

#include "test_support.hpp"

#include <core/boot/boot.hpp>
#include <core/cpu.hpp>
#include <core/lib/atomic.hpp>
#include <core/sync/spinlock.hpp>
#include <hal/hal.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/schedule.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

using hal_sim::Machine;
using hal_sim::MachineConfig;
using hal_sim::Schedule;
using hal_sim::Verdict;

Schedule schedule(const std::string& text) {
    std::string error;
    auto s = hal_sim::parse_schedule(text, &error);
    EXPECT_TRUE(s.has_value()) << text << ": " << error;
    return s.value_or(Schedule{});
}

TEST(Schedule, ParsesEachStrategyAndPrintsItBack) {
    EXPECT_EQ(schedule("coarse").kind, Schedule::Kind::Coarse);
    EXPECT_EQ(schedule("random").kind, Schedule::Kind::Random);
    EXPECT_EQ(schedule("random").stall_chance, 1.0 / 16);
    EXPECT_EQ(schedule("random:0.25").stall_chance, 0.25);
    EXPECT_EQ(schedule("pct").depth, 3u);
    EXPECT_EQ(schedule("pct").horizon, 0u);
    EXPECT_EQ(schedule("pct:5").depth, 5u);
    EXPECT_EQ(schedule("pct:2:1000").horizon, 1000u);
    for (const char* text : {"coarse", "random", "random:0.25", "random:0", "random:1",
                             "random:0.1", "pct:3", "pct:1", "pct:64:7"}) {
        Schedule s = schedule(text);
        EXPECT_EQ(schedule(hal_sim::describe(s)), s) << text;
    }
    EXPECT_EQ(hal_sim::describe(schedule("random:0.25")), "random:0.25");
    EXPECT_EQ(hal_sim::describe(schedule("pct:4:99")), "pct:4:99");
}

TEST(Schedule, RefusesWhatItCannotRun) {
    for (const char* text :
         {"", "fast", "coarse:1", "random:", "random:2", "random:-0.5", "random:nan", "random:x",
          "pct:0", "pct:65", "pct:3:0", "pct:3:", "pct:a", "pct:3:4:5", "Random"}) {
        std::string error;
        EXPECT_FALSE(hal_sim::parse_schedule(text, &error).has_value()) << text;
        EXPECT_FALSE(error.empty()) << text;
    }
}

// The test kernel: two CPUs each add 1 to a shared counter kRounds times. The increment is a
// read, a synchronisation point and a write, as in code that forgot its lock; with `locked`,
// a spinlock makes it a critical section.
constexpr uint64_t kRounds = 200;
uint64_t g_counter;
uint32_t g_done;
bool g_locked;
core::SpinLock g_lock("test counter", core::LockRank::Test);

void install_cpu(uint32_t index) {
    core::cpu(index).index = index;
    hal::set_this_cpu(&core::cpu(index));
}

void add_rounds() {
    for (uint64_t i = 0; i < kRounds; ++i) {
        if (g_locked) {
            auto guard = g_lock.lock_irqsave();
            uint64_t seen = g_counter;
            hal::sync_point();
            g_counter = seen + 1;
        } else {
            uint64_t seen = g_counter;
            hal::sync_point();
            g_counter = seen + 1;
        }
        hal::cpu_work(100);
    }
    core::atomic::fetch_add<core::atomic::acq_rel>(&g_done, 1);
}

struct Outcome {
    Verdict verdict;
    uint64_t counter;
    uint64_t sync_points;
    uint64_t stalls;
    uint64_t stall_ns;
    uint64_t clock0;
    uint64_t clock1;
};

Outcome count(const Schedule& s, uint64_t seed, bool locked = false) {
    g_counter = 0;
    g_done = 0;
    g_locked = locked;
    MachineConfig c;
    c.cpus = 2;
    c.seed = seed;
    c.schedule = s;
    c.memory = duet::test::fixture("qemu-q35-2g");
    c.kernel = {[](const core::BootInfo&) {
                    install_cpu(0);
                    hal::release_secondary_cpus();
                    add_rounds();
                    while (core::atomic::load<core::atomic::acquire>(&g_done) < 2) {
                        hal::cpu_relax();
                    }
                    hal::halt_machine(hal::ExitCode::Success);
                },
                [] {
                    install_cpu(1);
                    add_rounds();
                    for (;;) {
                        hal::wait_for_interrupt();
                    }
                },
                [] {}, [](hal::IpiKind) {}};
    Machine m(c);
    auto r = m.run();
    return {r.verdict,    g_counter,         m.sync_points(),  m.stalls(),
            m.stall_ns(), m.cpu(0).clock_ns, m.cpu(1).clock_ns};
}

TEST(Schedule, CoarseNeverInterleavesBetweenPreemptionPoints) {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        Outcome o = count(Schedule{}, seed);
        ASSERT_EQ(o.verdict, Verdict::Success);
        EXPECT_EQ(o.counter, 2 * kRounds) << "seed " << seed;
        EXPECT_EQ(o.sync_points, 0u) << "coarse stops at no synchronisation point";
    }
}

TEST(Schedule, RandomLosesAnUnlockedUpdateAndNotALockedOne) {
    int lost = 0;
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        Outcome o = count(schedule("random"), seed);
        ASSERT_EQ(o.verdict, Verdict::Success);
        EXPECT_GT(o.sync_points, 2 * kRounds);
        EXPECT_GT(o.stalls, 0u);
        lost += o.counter < 2 * kRounds ? 1 : 0;
        Outcome l = count(schedule("random"), seed, /*locked=*/true);
        ASSERT_EQ(l.verdict, Verdict::Success);
        EXPECT_EQ(l.counter, 2 * kRounds) << "the lock failed under seed " << seed;
    }
    EXPECT_GE(lost, 10) << "only " << lost << " of 20 seeds lost an update";
}

TEST(Schedule, PctLosesAnUnlockedUpdateAtItsChangePoints) {
    // K: the points of the run, counted as `duet run` counts them (random:0 stalls nowhere).
    Outcome counted = count(schedule("random:0"), 1);
    ASSERT_EQ(counted.stalls, 0u);
    Schedule s = schedule("pct:2");
    s.horizon = counted.sync_points;
    int lost = 0;
    for (uint64_t seed = 1; seed <= 20; ++seed) {
        Outcome o = count(s, seed);
        ASSERT_EQ(o.verdict, Verdict::Success);
        EXPECT_LE(o.stalls, 1u) << "depth 2: one change point";
        lost += o.counter < 2 * kRounds ? 1 : 0;
    }
    EXPECT_GE(lost, 2) << "only " << lost << " of 20 seeds lost an update";
}

TEST(Schedule, StallsOnlyMoveTheStalledCpusClockForward) {
    Outcome plain = count(schedule("random:0"), 3);
    Outcome stalled = count(schedule("random:0.5"), 3);
    ASSERT_EQ(stalled.verdict, Verdict::Success);
    EXPECT_GT(stalled.stall_ns, 0u);
    // Each CPU does the same work; the stalls come on top of it.
    EXPECT_GE(stalled.clock1, plain.clock1);
    EXPECT_LE(stalled.clock1, plain.clock1 + stalled.stall_ns + 2 * kRounds * 1'000);
}

TEST(Schedule, EachStrategyIsDeterministic) {
    for (const char* text : {"random", "random:0.5", "pct:3:2000"}) {
        Outcome a = count(schedule(text), 7);
        Outcome b = count(schedule(text), 7);
        EXPECT_EQ(a.counter, b.counter) << text;
        EXPECT_EQ(a.stalls, b.stalls) << text;
        EXPECT_EQ(a.stall_ns, b.stall_ns) << text;
        EXPECT_EQ(a.clock0, b.clock0) << text;
        EXPECT_EQ(a.clock1, b.clock1) << text;
    }
}

} // namespace
