// The race detector itself (duet run --race; docs/simulator.md, "Races"): two CPUs of a tiny
// test kernel write one plain variable, without a lock and with one. This file is kernel
// code: it is compiled with ThreadSanitizer, as the core is in the race build.

#include <core/boot/boot.hpp>
#include <core/sync/spinlock.hpp>
#include <hal/hal.hpp>
#include <hal_sim/machine.hpp>

#include <e820_file.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

using hal_sim::Machine;
using hal_sim::MachineConfig;
using hal_sim::Verdict;

constexpr int kRounds = 50;

uint64_t g_shared = 0; // the variable both CPUs write
uint32_t g_done = 0;   // CPUs that have finished (atomic)
bool g_locked = false; // whether the CPUs take the lock
core::SpinLock g_lock{"race test", core::LockRank::Test};

void add_one() {
    g_shared = g_shared + 1; // the racing access
}
constexpr int kRacingLine = __LINE__ - 2;

void work() {
    for (int i = 0; i < kRounds; ++i) {
        if (g_locked) {
            g_lock.lock();
            add_one();
            g_lock.unlock();
        } else {
            add_one();
        }
        hal::cpu_relax();
    }
    __atomic_fetch_add(&g_done, 1, __ATOMIC_ACQ_REL);
}

[[noreturn]] void boot(const core::BootInfo&) {
    hal::release_secondary_cpus();
    work();
    while (__atomic_load_n(&g_done, __ATOMIC_ACQUIRE) < 2) {
        hal::cpu_relax();
    }
    hal::halt_machine(hal::ExitCode::Success);
}

[[noreturn]] void ap() {
    work();
    for (;;) {
        hal::wait_for_interrupt();
    }
}

void no_timer() {}
void no_ipi(hal::IpiKind) {}

hal_sim::RunResult run(bool locked) {
    g_shared = 0;
    g_done = 0;
    g_locked = locked;
    MachineConfig c;
    c.cpus = 2;
    c.memory = duet::read_e820_file(std::string(DUET_FIXTURES_DIR) + "/qemu-q35-2g.e820");
    c.kernel = {&boot, &ap, &no_timer, &no_ipi};
    Machine m(std::move(c));
    return m.run();
}

// How many times `needle` occurs in `text`.
size_t count(const std::string& text, const std::string& needle) {
    size_t n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
        ++n;
    }
    return n;
}

TEST(Race, TwoCpusWritingOnePlainVariableIsARace) {
    hal_sim::RunResult r = run(false);
    ASSERT_EQ(r.verdict, Verdict::Race) << r.detail;
    EXPECT_STREQ(hal_sim::describe(r.verdict), "race");
    // Both accesses, by file and line (the read and the write of one statement), the CPU that
    // found it and the context of the other.
    const std::string at = "tests/race/race_test.cpp:" + std::to_string(kRacingLine) + " in ";
    EXPECT_EQ(count(r.detail, at), 2u) << r.detail;
    EXPECT_NE(r.detail.find("unordered with"), std::string::npos) << r.detail;
    EXPECT_TRUE(r.detail.starts_with("cpu 0 (cpu 0 boot stack)") ||
                r.detail.starts_with("cpu 1 (cpu 1 boot stack)"))
        << r.detail;
    EXPECT_NE(r.detail.find("by 'cpu "), std::string::npos) << r.detail;
    EXPECT_NE(r.detail.find(" s: data-race: "), std::string::npos) << r.detail;
}

TEST(Race, TheSameRaceIsFoundAgainInTheSameProcess) {
    // Two machines in one process, as --verify-determinism and duet check run them.
    hal_sim::RunResult first = run(false);
    hal_sim::RunResult second = run(false);
    ASSERT_EQ(first.verdict, Verdict::Race) << first.detail;
    EXPECT_EQ(second.verdict, Verdict::Race) << second.detail;
    EXPECT_EQ(first.detail, second.detail);
}

TEST(Race, ASpinLockOrdersTheWrites) {
    hal_sim::RunResult r = run(true);
    EXPECT_EQ(r.verdict, Verdict::Success) << r.detail;
    EXPECT_EQ(g_shared, 2u * kRounds);
}

} // namespace
