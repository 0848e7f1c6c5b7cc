// The executor's schedules (hal_sim/schedule.hpp): `coarse` interleaves the CPUs at preemption
// points only; `random`, `pct` and `input` also at synchronisation points, where a race the
// machine can show must be able to happen. Each test boots a small kernel of its own.

#include "test_support.hpp"

#include <core/boot/boot.hpp>
#include <core/cpu.hpp>
#include <core/lib/atomic.hpp>
#include <core/sync/spinlock.hpp>
#include <hal/fault.hpp>
#include <hal/hal.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/schedule.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

using hal_sim::InputChoice;
using hal_sim::InputFault;
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

// A file holding `bytes`, removed when the test ends.
class InputFile {
public:
    explicit InputFile(const std::vector<uint8_t>& bytes) {
        m_path =
            (std::filesystem::temp_directory_path() /
             ("duet-schedule-test-" + std::to_string(::getpid()) + "-" + std::to_string(s_count++)))
                .string();
        std::ofstream(m_path, std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()),
                   static_cast<std::streamsize>(bytes.size()));
    }
    ~InputFile() { std::remove(m_path.c_str()); }
    const std::string& path() const { return m_path; }

private:
    std::string m_path;
    static inline int s_count = 0;
};

TEST(Schedule, ReadsAnInputFileAndNamesItBack) {
    InputFile f({1, 0x00, 2, 0x85});
    Schedule s = schedule("input:" + f.path());
    EXPECT_EQ(s.kind, Schedule::Kind::Input);
    EXPECT_EQ(s.input, (std::vector<uint8_t>{1, 0x00, 2, 0x85}));
    EXPECT_EQ(hal_sim::describe(s), "input:" + f.path());
    EXPECT_EQ(schedule(hal_sim::describe(s)), s);
    EXPECT_TRUE(s.stops_at_sync_points());
}

TEST(Schedule, RefusesAnInputItCannotRead) {
    InputFile big(std::vector<uint8_t>(Schedule::kMaxInputBytes + 1, 0));
    InputFile largest(std::vector<uint8_t>(Schedule::kMaxInputBytes, 0));
    std::string dir = std::filesystem::temp_directory_path().string();
    for (std::string text : {std::string("input:"), std::string("input:/no/such/file"),
                             "input:" + dir, "input:" + big.path()}) {
        std::string error;
        EXPECT_FALSE(hal_sim::parse_schedule(text, &error).has_value()) << text;
        EXPECT_NE(error.find("input:FILE"), std::string::npos) << text << ": " << error;
    }
    EXPECT_EQ(schedule("input:" + largest.path()).input.size(), Schedule::kMaxInputBytes);
}

// A 100 KB value is not echoed whole: a value is cut after 60 bytes, a file name after 400.
TEST(Schedule, ErrorsQuoteLongValuesShortened) {
    std::string error;
    EXPECT_FALSE(hal_sim::parse_schedule(std::string(100'000, 'x'), &error).has_value());
    EXPECT_EQ(error, "expected coarse, random[:P], pct[:D[:K]] or input:FILE, not '" +
                         std::string(60, 'x') + "...'");
    EXPECT_FALSE(hal_sim::parse_schedule("pct:" + std::string(100, '9'), &error).has_value());
    EXPECT_EQ(error, "pct:D takes a depth D from 1 to 64, not '" + std::string(60, '9') + "...'");
    EXPECT_FALSE(
        hal_sim::parse_schedule("input:/no/such/" + std::string(1000, 'y'), &error).has_value());
    EXPECT_LT(error.size(), 500u) << error;
    EXPECT_NE(error.find("...'"), std::string::npos) << error;
}

std::vector<InputChoice> decode(const std::vector<uint8_t>& bytes) {
    hal_sim::ScheduleInput in(bytes);
    std::vector<InputChoice> out;
    while (auto c = in.next()) {
        out.push_back(*c);
    }
    return out;
}

TEST(Schedule, DecodesInputRecords) {
    using K = InputChoice::Kind;
    // clang-format off
    auto c = decode({
        3, 0x05,            // 3 points on: a race stall, 5 ns past the next CPU
        0, 0x80,            // the same point: a long stall of 1 us
        0xb8, 0x17, 0x8a,   // 3000 on (two-byte LEB128): a long stall of 1 us << 10
        1, 0xc3,            // timer latency 3 * 32 ns
        1, 0xe0,            // a frame_alloc fault
        1, 0xe9,            // ipi_duplicate (9 % 5 = 4), 1 us << 1 (unused)
        1, 0xe2,            // timer_late, 1 us late
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00, // more than 5 bytes: saturates
        1,                  // cut short: ignored
    });
    // clang-format on
    ASSERT_EQ(c.size(), 8u);
    EXPECT_EQ(c[0], (InputChoice{3, K::RaceStall, 5}));
    EXPECT_EQ(c[1], (InputChoice{3, K::LongStall, 1'024}));
    EXPECT_EQ(c[2], (InputChoice{3'003, K::LongStall, 1'024 << 10}));
    EXPECT_EQ(c[3], (InputChoice{3'004, K::TimerLatency, 96}));
    EXPECT_EQ(c[4], (InputChoice{3'005, K::Fault, 1'024, InputFault::FrameAlloc}));
    EXPECT_EQ(c[5], (InputChoice{3'006, K::Fault, 2'048, InputFault::IpiDuplicate}));
    EXPECT_EQ(c[6], (InputChoice{3'007, K::Fault, 1'024, InputFault::TimerLate}));
    EXPECT_EQ(c[7].at, 3'007 + hal_sim::ScheduleInput::kMaxDelta);
    EXPECT_TRUE(decode({}).empty());
    EXPECT_TRUE(decode({0x80}).empty()) << "a position with no end";
    // Every long stall is between kMinLongStallNs and kMaxLongStallNs.
    for (unsigned a = 0x80; a < 0xc0; ++a) {
        auto one = decode({0, static_cast<uint8_t>(a)});
        ASSERT_EQ(one.size(), 1u);
        EXPECT_GE(one[0].ns, Schedule::kMinLongStallNs);
        EXPECT_LE(one[0].ns, Schedule::kMaxLongStallNs);
    }
}

TEST(Schedule, RefusesWhatItCannotRun) {
    for (const char* text :
         {"", "fast", "coarse:1", "random:", "random:2", "random:-0.5", "random:nan", "random:x",
          "pct:0", "pct:65", "pct:3:0", "pct:3:", "pct:a", "pct:3:4:5", "Random", "input"}) {
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

// An input schedule: the bytes as `duet run --schedule input:FILE` would read them.
Schedule input(const std::vector<uint8_t>& bytes) {
    Schedule s;
    s.kind = Schedule::Kind::Input;
    s.input = bytes;
    return s;
}

TEST(Schedule, InputStallsWhereItSaysAndOnlyThere) {
    // No records: the run is random:0's (it stops at every point and never stalls).
    Outcome none = count(input({}), 1);
    Outcome zero = count(schedule("random:0"), 1);
    ASSERT_EQ(none.verdict, Verdict::Success);
    EXPECT_GT(none.sync_points, 2 * kRounds);
    EXPECT_EQ(none.stalls, 0u);
    EXPECT_EQ(none.counter, zero.counter);
    EXPECT_EQ(none.clock0, zero.clock0);
    EXPECT_EQ(none.clock1, zero.clock1);
    // One long stall of 1 us << 3, 100 points in: that one only.
    Outcome one = count(input({100, 0x83}), 1);
    EXPECT_EQ(one.stalls, 1u);
    EXPECT_EQ(one.stall_ns, 8'192u);
    // A race stall at every point the two CPUs share, each just past the other CPU: short.
    std::vector<uint8_t> every;
    for (uint64_t i = 0; i < 4 * kRounds; ++i) {
        every.insert(every.end(), {1, 0x00});
    }
    Outcome o = count(input(every), 1);
    ASSERT_EQ(o.verdict, Verdict::Success);
    EXPECT_GT(o.stalls, kRounds);
    EXPECT_LE(o.stall_ns, o.stalls * (Schedule::kMaxRaceGapNs + 1));
    EXPECT_NE(o.counter, none.counter) << "the stalls changed nothing";
    Outcome again = count(input(every), 1);
    EXPECT_EQ(again.counter, o.counter);
    EXPECT_EQ(again.stall_ns, o.stall_ns);
    EXPECT_EQ(again.clock1, o.clock1);
    Outcome locked = count(input(every), 1, /*locked=*/true);
    ASSERT_EQ(locked.verdict, Verdict::Success);
    EXPECT_EQ(locked.counter, 2 * kRounds) << "the lock failed";
}

// Two CPUs that each ask the fault point kAsks times whether to fail.
constexpr uint32_t kAsks = 100;
uint32_t g_faults;

void ask_for_faults() {
    for (uint32_t i = 0; i < kAsks; ++i) {
        hal::sync_point();
        if (hal::inject_fault(hal::FaultPoint::HeapAlloc)) {
            core::atomic::fetch_add<core::atomic::relaxed>(&g_faults, 1);
        }
        hal::cpu_work(100);
    }
    core::atomic::fetch_add<core::atomic::acq_rel>(&g_done, 1);
}

uint32_t faults(const Schedule& s, double heap_alloc_rate) {
    g_faults = 0;
    g_done = 0;
    MachineConfig c;
    c.cpus = 2;
    c.schedule = s;
    c.faults.heap_alloc = heap_alloc_rate;
    c.memory = duet::test::fixture("qemu-q35-2g");
    c.kernel = {[](const core::BootInfo&) {
                    install_cpu(0);
                    hal::release_secondary_cpus();
                    ask_for_faults();
                    while (core::atomic::load<core::atomic::acquire>(&g_done) < 2) {
                        hal::cpu_relax();
                    }
                    hal::halt_machine(hal::ExitCode::Success);
                },
                [] {
                    install_cpu(1);
                    ask_for_faults();
                    for (;;) {
                        hal::wait_for_interrupt();
                    }
                },
                [] {}, [](hal::IpiKind) {}};
    Machine m(c);
    EXPECT_EQ(m.run().verdict, Verdict::Success);
    return g_faults;
}

TEST(Schedule, InputFaultsStrikeWhereItSaysIfTheMachineAllowsThem) {
    // Three heap_alloc faults (0xe1) and one frame_alloc fault (0xe0), which nothing asks for.
    std::vector<uint8_t> three = {10, 0xe1, 10, 0xe1, 10, 0xe0, 10, 0xe1};
    EXPECT_EQ(faults(input(three), 1e-9), 3u);
    EXPECT_EQ(faults(input(three), 0), 0u) << "a rate of 0: the fault may not happen";
    EXPECT_EQ(faults(input({}), 1), 0u) << "under input, only the input makes faults";
    // Two records before one chance: one fault (it is armed, not counted).
    EXPECT_EQ(faults(input({1, 0xe1, 0, 0xe1}), 1e-9), 1u);
    // Other schedules draw them.
    EXPECT_EQ(faults(Schedule{}, 1), 2 * kAsks);
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
