// `duet run` and `duet check` end to end, in process: scenario in, report and verdict out.

#include <report.hpp>
#include <run.hpp>

#include <hal_sim/schedule.hpp>

#include <fmt/format.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace {

class RunTest : public ::testing::Test {
protected:
    std::string write(const std::string& name, const std::string& text) {
        auto path = m_dir / name;
        std::ofstream(path) << text;
        return path.string();
    }

    void SetUp() override {
        m_dir = std::filesystem::temp_directory_path() /
                ("duet-run-test-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(m_dir);
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }

    std::filesystem::path m_dir;
};

TEST_F(RunTest, EveryCatalogueMetricIsReported) {
    // With a process, since only a run that starts one reports the user.* and ipc.* metrics.
    auto o = duet::execute(write("a.scn", "memory preset=qemu-q35-2g\nmachine cpus=2\n"
                                          "process p\n  yield\n"),
                           {}, nullptr);
    ASSERT_EQ(o.status, duet::kExitOk) << o.first_failure();
    for (const auto& m : duet::metric_catalogue()) {
        EXPECT_TRUE(o.report.has(m.name)) << m.name << " is in the catalogue but not reported";
    }
    EXPECT_EQ(o.report.number("memory.usable_frames"), 524158.0);
    EXPECT_EQ(o.report.number("machine.cpus"), 2.0);
    EXPECT_EQ(o.report.text("verdict"), "success");
}

TEST_F(RunTest, AllocatorCountersAreReportedHoweverTheCpusInterleave) {
    // Under random, a CPU may stop with the machine inside an allocator's critical section
    // (seed 39 of default.scn did): the counters reported are those the kernel read under
    // the locks before it stopped, so they are there, and they add up, in every run.
    duet::RunOptions options;
    std::string error;
    options.schedule = *hal_sim::parse_schedule("random", &error);
    for (uint64_t seed = 1; seed <= 60; ++seed) {
        options.seed = seed;
        auto o = duet::execute(DUET_SOURCE_DIR "/scenarios/default.scn", options, nullptr);
        ASSERT_EQ(o.status, duet::kExitOk) << "seed " << seed << ": " << o.first_failure();
        EXPECT_TRUE(o.report.has("memory.leaked_frames")) << "seed " << seed;
        EXPECT_TRUE(o.report.has("heap.live")) << "seed " << seed;
        EXPECT_EQ(o.report.number("memory.accounting_ok"), 1.0) << "seed " << seed;
    }
}

TEST_F(RunTest, FreedKernelStacksAreKeptTwoPerCpuAndReported) {
    // 40 threads that exit on 2 CPUs: 4 stacks (16 frames) stay kept, and count as used.
    auto o = duet::execute(write("a.scn", "memory preset=qemu-q35-2g\nmachine cpus=2\n"
                                          "program p\n  compute 10us\n"
                                          "spawn p count=40\n"),
                           {}, nullptr);
    ASSERT_EQ(o.status, duet::kExitOk) << o.first_failure();
    EXPECT_EQ(o.report.number("threads.exited"), 40.0);
    EXPECT_EQ(o.report.number("memory.kept_stack_frames"), 16.0);
    EXPECT_GE(o.report.number("memory.used_frames"), 16.0);
}

TEST_F(RunTest, SpawnsThatFailLeaveNoGapsInTheThreadNumbers) {
    // Half the frame allocations fail: many spawns find no frames for a stack (or a chunk of
    // thread slots). A spawn takes its number only once it cannot fail, so the threads that
    // started are numbered without gaps.
    auto o = duet::execute(write("a.scn", "memory preset=qemu-q35-2g\nmachine cpus=2\n"
                                          "faults frame_alloc=50%\n"
                                          "program p\n  compute 1us\n"
                                          "spawn p count=300\n"),
                           {}, nullptr);
    ASSERT_EQ(o.status, duet::kExitOk) << o.first_failure();
    ASSERT_GE(o.report.number("threads.spawn_failures"), 20.0);
    ASSERT_GE(o.report.number("threads.started"), 20.0);
    const auto& rows = o.report.threads;
    ASSERT_FALSE(rows.empty());
    for (size_t i = 1; i < rows.size(); ++i) {
        EXPECT_EQ(rows[i].id, rows[i - 1].id + 1) << "after thread " << rows[i - 1].id;
    }
}

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_F(RunTest, MutexesTakenInBothOrdersStopTheRunTheFirstTimeNamingBoth) {
    // One CPU, and the second thread starts after the first is done: no deadlock can happen in
    // this run, but the orders could deadlock in another.
    std::string path = write("inv.scn", "machine cpus=1\nmemory preset=qemu-q35-2g\n"
                                        "program forward\n  lock journal\n  lock disk\n"
                                        "  unlock disk\n  unlock journal\n"
                                        "program backward\n  sleep 1ms\n  lock disk\n"
                                        "  lock journal\n  unlock journal\n  unlock disk\n"
                                        "spawn forward\nspawn backward\n");
    duet::RunOptions options;
    options.com1_path = (m_dir / "com1.txt").string();
    auto o = duet::execute(path, options, nullptr);
    EXPECT_EQ(o.result.verdict, hal_sim::Verdict::Panic) << o.result.detail;
    std::string com1 = read_file(options.com1_path);
    EXPECT_NE(com1.find("lock order: thread 3 'backward' takes mutex 'journal'"), std::string::npos)
        << com1;
    EXPECT_NE(com1.find("lock order: while it holds 'disk'"), std::string::npos) << com1;
    EXPECT_NE(com1.find("lock order: 'disk' was taken while holding 'journal'"), std::string::npos)
        << com1;
}

TEST_F(RunTest, UnlockingAMutexAThreadDoesNotHoldStopsTheRunNamingBothThreads) {
    // `first` unlocks twice (the second time in its repeat): by then it has handed the mutex
    // to `second`, which waited for it. No static look at one program can tell.
    std::string path = write("unlock.scn", "machine cpus=2\nmemory preset=qemu-q35-2g\n"
                                           "program first\n  lock journal\n  compute 2ms\n"
                                           "  repeat 2\n    unlock journal\n    compute 1ms\n"
                                           "program second\n  sleep 1ms\n  lock journal\n"
                                           "  compute 5ms\n  unlock journal\n"
                                           "spawn first\nspawn second\n");
    duet::RunOptions options;
    options.com1_path = (m_dir / "com1.txt").string();
    auto o = duet::execute(path, options, nullptr);
    EXPECT_EQ(o.result.verdict, hal_sim::Verdict::Panic) << o.result.detail;
    std::string com1 = read_file(options.com1_path);
    EXPECT_NE(com1.find("workload: thread 2 'first' unlocks mutex 'journal', which it does not "
                        "hold;\n"),
              std::string::npos)
        << com1;
    EXPECT_NE(com1.find("workload: thread 3 'second' holds it\n"), std::string::npos) << com1;
    // Nobody holding it: the same, said so.
    path = write("unlock2.scn", "memory preset=qemu-q35-2g\n"
                                "program twice\n  lock journal\n  repeat 2\n    unlock journal\n"
                                "spawn twice\n");
    o = duet::execute(path, options, nullptr);
    EXPECT_EQ(o.result.verdict, hal_sim::Verdict::Panic) << o.result.detail;
    com1 = read_file(options.com1_path);
    EXPECT_NE(com1.find("workload: thread 2 'twice' unlocks mutex 'journal', which it does not "
                        "hold;\nworkload: nobody holds it\n"),
              std::string::npos)
        << com1;
}

// On one CPU, init starts a priority-6 thread that computes for 50 ms first: only then can it
// start the two others, which share the remaining 50 ms. Measured over each thread's own life,
// they got half the CPU each, as fair as could be (Jain 0.889 with the priority-6 thread's
// whole CPU); measured from when the scenario meant them to start, a quarter each (0.667).
TEST_F(RunTest, FairnessCountsTheTimeAThreadWasKeptFromStarting) {
    std::string path = write("late.scn", "machine cpus=1 tick=1ms slice=4ms\n"
                                         "memory preset=qemu-q35-2g\nrun until=100ms\n"
                                         "program first\n  compute 50ms\n"
                                         "program hog\n  repeat 1000\n    compute 1ms\n"
                                         "spawn first priority=6\nspawn hog count=2\n");
    auto o = duet::execute(path, duet::RunOptions{}, nullptr);
    ASSERT_EQ(o.result.verdict, hal_sim::Verdict::Success) << o.result.detail;
    EXPECT_NEAR(o.report.number("sched.fairness").value_or(0), 2.25 / 3.375, 0.01);
}

// Under the UEFI loader a machine with 1.4 MiB above the ISA hole boots into the kernel, which
// has too little memory for its own page tables (with 1.5 MiB it builds them and runs). It
// must say so; the failed build used to give its tables back to the boot's bump allocator,
// which takes nothing back: "frames.free(pa) failed: invalid argument".
TEST_F(RunTest, AKernelTooBigForItsMemorySaysItIsOutOfMemory) {
    std::string path = write("tiny.scn", "machine firmware=bootboot-uefi\nmemory\n"
                                         "  0x0 0x9fc00 1\n  0x100000 0x170000 1\n"
                                         "program p\n  compute 1ms\nspawn p\n");
    duet::RunOptions options;
    options.com1_path = (m_dir / "com1.txt").string();
    auto o = duet::execute(path, options, nullptr);
    EXPECT_EQ(o.result.verdict, hal_sim::Verdict::Panic) << o.result.detail;
    std::string com1 = read_file(options.com1_path);
    EXPECT_NE(com1.find("vm: building the kernel address space: out of memory\n"),
              std::string::npos)
        << com1;
    EXPECT_EQ(com1.find("invalid argument"), std::string::npos) << com1;
}

// The same stuck workload, found by the kernel's watchdog (every CPU idle, no timer due,
// threads waiting, at two checks in a row), and with the watchdog off, by the simulator.
const char* kStuck = "memory preset=qemu-q35-2g\n"
                     "program holder\n  lock journal\n"
                     "program waiter\n  sleep 1ms\n  lock journal\n"
                     "program listener\n  wait doorbell\n"
                     "spawn holder\nspawn waiter\nspawn listener\n";

TEST_F(RunTest, TheWatchdogSaysWhoWaitsForWhatOnAMachineThatCanNeverRunAgain) {
    std::string path = write("stuck.scn", std::string("machine cpus=2 watchdog=100ms\n") + kStuck);
    duet::RunOptions options;
    options.com1_path = (m_dir / "com1.txt").string();
    auto o = duet::execute(path, options, nullptr);
    EXPECT_EQ(o.result.verdict, hal_sim::Verdict::Panic) << o.result.detail;
    std::string com1 = read_file(options.com1_path);
    EXPECT_NE(com1.find("watchdog: every CPU is idle and no timer is due, yet threads wait:"),
              std::string::npos)
        << com1;
    EXPECT_NE(com1.find("watchdog: thread 3 'waiter' waits for mutex 'journal', held by thread 2 "
                        "'holder', which has exited without unlocking it"),
              std::string::npos)
        << com1;
    EXPECT_NE(com1.find("watchdog: thread 4 'listener' waits for event 'doorbell', which has no "
                        "token"),
              std::string::npos)
        << com1;
    EXPECT_NE(com1.find("panic: watchdog: the machine is stuck"), std::string::npos) << com1;
}

TEST_F(RunTest, WithoutTheWatchdogTheDeadlockVerdictSaysWhoWaitsForWhat) {
    std::string path = write("stuck.scn", std::string("machine cpus=2 watchdog=off\n") + kStuck);
    auto o = duet::execute(path, {}, nullptr);
    EXPECT_EQ(o.result.verdict, hal_sim::Verdict::Deadlock);
    const std::string& d = o.result.detail;
    EXPECT_NE(d.find("thread 3 'waiter' waits for mutex 'journal', held by thread 2 'holder', "
                     "which has exited without unlocking it"),
              std::string::npos)
        << d;
    EXPECT_NE(d.find("thread 4 'listener' waits for event 'doorbell', which has no token"),
              std::string::npos)
        << d;
}

TEST_F(RunTest, ARunOutOfTimeSaysWhoSleepsAndWhoWaitsForWhat) {
    std::string path = write("late.scn", "memory preset=qemu-q35-2g\nrun limit=5ms\n"
                                         "program sleeper\n  sleep 100ms\n"
                                         "spawn sleeper\n");
    auto o = duet::execute(path, {}, nullptr);
    EXPECT_EQ(o.result.verdict, hal_sim::Verdict::TimeLimit);
    const std::string& d = o.result.detail;
    EXPECT_NE(d.find("thread 2 'sleeper' sleeps until 10"), std::string::npos) << d;
    EXPECT_NE(d.find("thread 1 'init' waits for event 'workload.done'"), std::string::npos) << d;
}

TEST_F(RunTest, AHostTimeLimitEndsTheRunWithVerdictTimeoutAndHowToRunItAgain) {
    // 40 s of virtual time take seconds of host time; the limit is a tenth of a second.
    const std::string long_scn = DUET_SOURCE_DIR "/tests/swarm/long.scn";
    duet::RunOptions options;
    options.quiet = true;
    options.timeout_ns = 100'000'000;
    auto o = duet::execute(long_scn, options, nullptr);
    EXPECT_EQ(o.status, duet::kExitFailed);
    EXPECT_EQ(o.result.verdict, hal_sim::Verdict::Timeout);
    EXPECT_EQ(o.report.text("verdict"), "timeout");
    EXPECT_NE(o.first_failure().find("timeout: the run used its 0.100000000 s of host CPU time"),
              std::string::npos)
        << o.first_failure();
    EXPECT_LT(o.report.number("time.virtual_ns").value_or(0), 40e9) << "it ran to the end";
    // `duet run` prints the report and the command that repeats the run, limit included.
    std::FILE* out = std::tmpfile();
    std::FILE* err = std::tmpfile();
    EXPECT_EQ(duet::run_scenario(long_scn, options, out, err), duet::kExitFailed);
    std::rewind(err);
    std::string text;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, err)) > 0;) {
        text.append(buf, n);
    }
    EXPECT_NE(text.find("reproduce: ./duet run " + long_scn + " --seed 1 --timeout 100ms\n"),
              std::string::npos)
        << text;
    std::fclose(out);
    std::fclose(err);
}

TEST_F(RunTest, AMemoryLimitEndsTheRunWithVerdictOutOfMemoryAndHowToRunItAgain) {
    // hog.scn grows by about 1 MB a virtual millisecond to about 200 MB; the limit is 64 MiB
    // (the process's resident memory: gtest's and the earlier tests' included).
    const std::string hog_scn = DUET_SOURCE_DIR "/tests/swarm/hog.scn";
    duet::RunOptions options;
    options.quiet = true;
    options.memory_limit_bytes = uint64_t{64} << 20;
    std::FILE* out = std::tmpfile();
    std::FILE* err = std::tmpfile();
    EXPECT_EQ(duet::run_scenario(hog_scn, options, out, err), duet::kExitFailed);
    std::rewind(err);
    std::string text;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, err)) > 0;) {
        text.append(buf, n);
    }
    EXPECT_NE(text.find(": run failed (seed 1): out of memory: the simulator's resident memory "
                        "reached "),
              std::string::npos)
        << text;
    EXPECT_NE(text.find(" MiB, over its limit of 64.0 MiB (--memory-limit)"), std::string::npos)
        << text;
    EXPECT_NE(text.find("reproduce: ./duet run " + hog_scn + " --seed 1 --memory-limit 64MiB\n"),
              std::string::npos)
        << text;
    // It stopped on the way, not at the end: not every thread started.
    EXPECT_NE(text.find("expectation failed: threads.started == 20001"), std::string::npos) << text;
    std::fclose(out);
    std::fclose(err);
}

TEST_F(RunTest, JsonNestsDottedNames) {
    auto o =
        duet::execute(write("a.scn", "memory preset=qemu-pc-2g\nmachine seed=9\n"), {}, nullptr);
    auto j = o.report.to_json();
    EXPECT_EQ(j["seed"], 9);
    EXPECT_EQ(j["memory"]["usable_frames"], 524159);
    EXPECT_EQ(j["expectations"]["failed"], 0);
    EXPECT_EQ(j["digest"].get<std::string>().size(), 16u);
    EXPECT_EQ(j["cpus"].size(), 1u);
}

TEST_F(RunTest, FailedExpectationFailsTheRunAndSaysWhere) {
    std::string path = write("e.scn", "memory preset=qemu-q35-2g\n"
                                      "expect memory.usable_frames == 524158\n"
                                      "expect machine.cpus >= 2\n");
    auto o = duet::execute(path, {}, nullptr);
    EXPECT_EQ(o.status, duet::kExitFailed);
    ASSERT_EQ(o.checked.size(), 2u);
    EXPECT_TRUE(o.checked[0].held);
    EXPECT_FALSE(o.checked[1].held);
    EXPECT_EQ(o.first_failure(), path + ":3: expected machine.cpus >= 2, got 1");
    EXPECT_EQ(o.report.number("expectations.failed"), 1.0);
}

TEST_F(RunTest, CommandLineOverridesTheScenario) {
    duet::RunOptions options;
    options.cpus = 3;
    options.seed = 77;
    options.memory = "qemu-q35-8g";
    auto o = duet::execute(write("a.scn", "memory preset=qemu-q35-2g\nexpect machine.cpus == 3\n"),
                           options, nullptr);
    EXPECT_EQ(o.status, duet::kExitOk) << o.first_failure();
    EXPECT_EQ(o.report.number("memory.usable_frames"), 2097022.0);
    EXPECT_EQ(o.report.number("seed"), 77.0);
}

TEST_F(RunTest, SameSeedSameDigestOtherSeedOtherDigest) {
    std::string path = write("a.scn", "memory preset=qemu-q35-2g\nmachine cpus=8\n");
    duet::RunOptions a;
    a.seed = 5;
    duet::RunOptions b;
    b.seed = 6;
    auto first = duet::execute(path, a, nullptr);
    auto again = duet::execute(path, a, nullptr);
    auto other = duet::execute(path, b, nullptr);
    EXPECT_EQ(first.report.text("digest"), again.report.text("digest"));
    EXPECT_NE(first.report.text("digest"), other.report.text("digest"));
}

// Workload threads print nothing: two schedules that differ only in how long the threads
// compute write the same COM1 lines, and the digest must still tell them apart.
TEST_F(RunTest, TheDigestCoversTheScheduleNotOnlyWhatWasPrinted) {
    auto scenario = [](const char* compute) {
        return fmt::format("machine cpus=2\nmemory preset=qemu-q35-2g\nrun until=20ms\n"
                           "program w\n  repeat 100\n    compute {}\n    sleep 1ms\n"
                           "spawn w count=6\n",
                           compute);
    };
    duet::RunOptions options;
    options.com1_path = (m_dir / "a.com1").string();
    auto a = duet::execute(write("a.scn", scenario("100us")), options, nullptr);
    std::string a_com1 = read_file(options.com1_path);
    options.com1_path = (m_dir / "b.com1").string();
    auto b = duet::execute(write("b.scn", scenario("150us")), options, nullptr);
    ASSERT_EQ(a.status, duet::kExitOk) << a.first_failure();
    ASSERT_EQ(b.status, duet::kExitOk) << b.first_failure();
    ASSERT_EQ(a_com1, read_file(options.com1_path)) << "the runs print the same lines";
    EXPECT_NE(a.report.text("digest"), b.report.text("digest"));

    // How often the invariants are checked is not part of the run (the schedule fuzzer's build
    // and `duet run` check at other rates and must agree on a finding's digest).
    options.check_every = 7;
    auto again = duet::execute(write("a.scn", scenario("100us")), options, nullptr);
    ASSERT_NE(again.report.text("invariants.checks"), a.report.text("invariants.checks"));
    EXPECT_EQ(again.report.text("digest"), a.report.text("digest"));
}

TEST_F(RunTest, CheckRunsAFolderAndCounts) {
    write("good.scn", "memory preset=qemu-q35-2g\n");
    write("bad.scn", "memory preset=qemu-q35-2g\nexpect machine.cpus == 2\n");
    write("broken.scn", "memroy preset=qemu-q35-2g\n");
    write("notes.txt", "not a scenario");
    std::FILE* out = std::tmpfile();
    int status = duet::check_scenarios({m_dir.string()}, {}, out);
    std::rewind(out);
    std::string text;
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof buf, out)) {
        text.append(buf, n);
    }
    std::fclose(out);
    EXPECT_EQ(status, duet::kExitFailed);
    EXPECT_NE(text.find("FAIL  " + (m_dir / "bad.scn").string()), std::string::npos) << text;
    EXPECT_NE(text.find("unknown keyword 'memroy'; did you mean 'memory'?"), std::string::npos)
        << text;
    EXPECT_NE(text.find("PASS  " + (m_dir / "good.scn").string()), std::string::npos) << text;
    EXPECT_EQ(text.substr(text.rfind('\n', text.size() - 2) + 1), "1 passed, 2 failed\n");
}

// `duet run` warns about a program nothing starts; `duet check` used to say only PASS.
TEST_F(RunTest, CheckShowsTheWarningsARunWouldPrint) {
    std::string spare = write("spare.scn", "memory preset=qemu-q35-2g\nprogram spare\n"
                                           "  compute 1ms\n");
    std::FILE* out = std::tmpfile();
    int status = duet::check_scenarios({spare}, {}, out);
    std::rewind(out);
    std::string text;
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof buf, out)) {
        text.append(buf, n);
    }
    std::fclose(out);
    EXPECT_EQ(status, duet::kExitOk) << "a warning does not fail the check";
    EXPECT_NE(text.find("\n      " + spare + ":2: warning: program 'spare' never runs"),
              std::string::npos)
        << text;
    EXPECT_EQ(text.substr(text.rfind('\n', text.size() - 2) + 1),
              "1 passed, 0 failed, 1 warning\n");
}

} // namespace
