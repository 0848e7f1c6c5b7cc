// Scenario processes end to end (docs/scenarios.md, "Processes"): process blocks compiled to
// scripts, run in ring 3 by user/programs/script.cpp, and the user.* and ipc.* metrics.

#include <report.hpp>
#include <run.hpp>
#include <scenario.hpp>

#include <hal_sim/schedule.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace {

class ScenarioProcess : public ::testing::Test {
protected:
    std::string write(const std::string& name, const std::string& text) {
        auto path = m_dir / name;
        std::ofstream(path) << text;
        return path.string();
    }

    // Runs `path` with COM1 kept; returns the outcome, COM1 in `com1`.
    duet::Outcome run(const std::string& path, duet::RunOptions options, std::string* com1) {
        options.com1_path = (m_dir / "com1.txt").string();
        options.quiet = true;
        duet::Outcome o = duet::execute(path, options, nullptr);
        std::ifstream in(options.com1_path);
        *com1 = {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
        return o;
    }

    void SetUp() override {
        m_dir = std::filesystem::temp_directory_path() /
                ("duet-process-test-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(m_dir);
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }

    std::filesystem::path m_dir;
};

bool has(const std::string& text, const std::string& line) {
    return text.find(line + "\n") != std::string::npos;
}

// On one CPU, a call finds the server blocked in recv and the CPU goes straight to it; its
// reply_recv finds no other call and goes straight back: every call and every reply is a
// direct switch.
TEST_F(ScenarioProcess, AClientAndItsServerOnOneCpuSwitchDirectlyEveryTime) {
    duet::RunOptions options;
    options.cpus = 1;
    std::string com1;
    auto o = run(DUET_SOURCE_DIR "/scenarios/user-client-server.scn", options, &com1);
    ASSERT_EQ(o.status, duet::kExitOk) << o.first_failure() << com1;
    EXPECT_EQ(o.report.number("ipc.calls"), 200.0);
    EXPECT_EQ(o.report.number("ipc.direct_switches"), 400.0) << com1;
    EXPECT_EQ(o.report.number("user.syscalls"), 403.0);
    EXPECT_GT(*o.report.number("ipc.round_trip_ns.p50"), 0.0);
    EXPECT_LE(*o.report.number("ipc.round_trip_ns.p50"), *o.report.number("ipc.round_trip_ns.p99"));
    EXPECT_LE(*o.report.number("ipc.round_trip_ns.p99"), *o.report.number("ipc.round_trip_ns.max"));
    EXPECT_TRUE(has(com1, "user: 'server' (process 1) exited with code 0 after 202 system calls"))
        << com1;
}

// The processes that break the rules end with their reports, the one that hands the kernel
// bad addresses is refused and goes on, and the client and server are untouched.
TEST_F(ScenarioProcess, TheIntrudersEndWithTheirReportsAndTheOthersFinish) {
    for (uint32_t cpus : {1u, 4u}) {
        duet::RunOptions options;
        options.cpus = cpus;
        std::string com1;
        auto o = run(DUET_SOURCE_DIR "/scenarios/user-isolation.scn", options, &com1);
        ASSERT_EQ(o.status, duet::kExitOk) << o.first_failure() << com1;
        const char* lines[] = {
            "user: killed 'kernel-reader' (process 4, thread 5): user read at "
            "0xffffffffffe02000, protection, ip 0x0",
            // The server's table is at the first address a process maps; the reader has
            // nothing there.
            "user: killed 'snoop' (process 5, thread 6): user read at 0x0000100000000000, not "
            "present, ip 0x0",
            "user: killed 'read-only' (process 7, thread 8): user write at 0x0000100000000000, "
            "protection, ip 0x0",
            "user: bad-pointer: three refusals, and still here",
            "user: 'bad-pointer' (process 6) exited with code 0 after 5 system calls",
            "user: 'server' (process 1) exited with code 0 after 203 system calls",
            "user: 'client' (process 2) exited with code 0 after 101 system calls",
            "user: 'client' (process 3) exited with code 0 after 101 system calls",
            "user: 412 system calls, 3 refused for a bad address",
        };
        for (const char* line : lines) {
            EXPECT_TRUE(has(com1, line)) << cpus << " CPUs: " << line << "\n" << com1;
        }
        EXPECT_EQ(o.report.number("user.leaked_frames"), 0.0);
    }
}

// A waiter on a notification whose every signaller has ended is told so (PeerGone), whether
// it was waiting already or waits afterwards, instead of waiting for ever.
TEST_F(ScenarioProcess, AWaiterWhoseSignallersHaveAllEndedGetsPeerGone) {
    std::string path = write("orphan.scn", "machine cpus=2\nmemory preset=qemu-q35-2g\n"
                                           "process signaller signal=done\n  sleep 1ms\n"
                                           "process early wait=done\n  wait done\n"
                                           "process late wait=done\n  sleep 2ms\n  wait done\n");
    std::string com1;
    auto o = run(path, {}, &com1);
    ASSERT_EQ(o.result.verdict, hal_sim::Verdict::Success) << o.result.detail << com1;
    EXPECT_TRUE(has(com1, "user: early: wait failed: error -7")) << com1;
    EXPECT_TRUE(has(com1, "user: 'early' (process 2) exited with code 7 after 3 system calls"))
        << com1;
    EXPECT_TRUE(has(com1, "user: 'late' (process 3) exited with code 7 after 4 system calls"))
        << com1;
    EXPECT_EQ(o.report.number("user.processes.failed"), 2.0);
    EXPECT_EQ(o.report.number("ipc.peer_gone"), 2.0);
    EXPECT_EQ(o.report.number("ipc.objects_left"), 0.0);
}

// Bits signalled before the last signaller ended are still taken by a later wait.
TEST_F(ScenarioProcess, BitsSetBeforeTheSignallersEndedAreStillTaken) {
    std::string path = write("bits.scn", "memory preset=qemu-q35-2g\n"
                                         "process signaller signal=done\n  signal done bits=6\n"
                                         "process waiter wait=done\n  sleep 1ms\n  wait done\n"
                                         "  log woken\n");
    std::string com1;
    auto o = run(path, {}, &com1);
    ASSERT_EQ(o.status, duet::kExitOk) << o.first_failure() << com1;
    EXPECT_TRUE(has(com1, "user: waiter: woken")) << com1;
    EXPECT_EQ(o.report.number("user.processes.failed"), 0.0);
}

// Many clients on one server across CPUs, under the schedules that interleave the CPUs at
// every synchronisation point: the same output for the same seed, and every call answered.
TEST_F(ScenarioProcess, ManyClientsGiveTheSameRunForTheSameSeed) {
    for (const char* schedule : {"coarse", "random", "pct"}) {
        duet::RunOptions options;
        std::string error;
        options.schedule = *hal_sim::parse_schedule(schedule, &error);
        options.seed = 7;
        std::string first;
        std::string second;
        auto a = run(DUET_SOURCE_DIR "/scenarios/user-many-clients.scn", options, &first);
        auto b = run(DUET_SOURCE_DIR "/scenarios/user-many-clients.scn", options, &second);
        ASSERT_EQ(a.status, duet::kExitOk) << schedule << ": " << a.first_failure() << first;
        EXPECT_EQ(a.report.text("digest"), b.report.text("digest")) << schedule;
        EXPECT_EQ(first, second) << schedule;
        EXPECT_EQ(a.report.number("ipc.calls"), 600.0) << schedule;
    }
}

// Two processes that compute on one CPU share it: the timer interrupts come while they run in
// user mode, the kernel preempts them there at the end of each slice, and each goes on in user
// mode when it is resumed (a system call from kernel mode would stop the simulator).
TEST_F(ScenarioProcess, ProcessesThatComputeArePreemptedInUserMode) {
    std::string path = write("compute.scn", "machine cpus=1 tick=1ms slice=2ms\n"
                                            "memory preset=qemu-q35-2g\n"
                                            "process a\n  compute 20ms\n  log a is done\n"
                                            "process b\n  compute 20ms\n  log b is done\n");
    std::string com1;
    auto o = run(path, {}, &com1);
    ASSERT_EQ(o.status, duet::kExitOk) << o.first_failure() << com1;
    EXPECT_TRUE(has(com1, "user: a: a is done")) << com1;
    EXPECT_TRUE(has(com1, "user: b: b is done")) << com1;
    // 40 ms of work in 2 ms slices: about 19 preemptions, all of them in user mode.
    EXPECT_GE(*o.report.number("sched.preemptions"), 15.0) << com1;
    EXPECT_GE(*o.report.number("time.virtual_ns"), 40e6);
    EXPECT_EQ(o.report.number("user.processes.failed"), 0.0);
}

// Two processes that call each other before either serves wait for ever: the run's verdict
// names each one, the call it is in, on which endpoint, and for what.
TEST_F(ScenarioProcess, ProcessesStuckInIpcAreNamedWithWhatTheyWaitFor) {
    std::string path = write("stuck.scn", "machine cpus=2\nmemory preset=qemu-q35-2g\n"
                                          "run limit=50ms\n"
                                          "process a call=to-b serve=to-a\n  call to-b\n"
                                          "  serve to-a\n"
                                          "process b call=to-a serve=to-b\n  call to-a\n"
                                          "  serve to-b\n"
                                          "process c serve=to-c wait=never\n  wait never\n"
                                          "process d call=to-c signal=never\n  sleep 1ms\n"
                                          "  call to-c\n"
                                          "process front serve=to-front call=to-c\n"
                                          "  receive to-front\n  call to-c\n  reply\n"
                                          "process e call=to-front\n  call to-front\n");
    std::string com1;
    auto o = run(path, {}, &com1);
    EXPECT_EQ(o.result.verdict, hal_sim::Verdict::TimeLimit) << o.result.detail;
    const char* lines[] = {
        "thread 2 'a' (process 1) waits in call on endpoint 'to-b' for a receiver",
        "thread 3 'b' (process 2) waits in call on endpoint 'to-a' for a receiver",
        "thread 4 'c' (process 3) waits on notification 'never' for a signal",
        "thread 5 'd' (process 4) waits in call on endpoint 'to-c' for a receiver",
        "thread 1 'init' waits for thread 2 'a' to exit",
        // A chain: e's call was received by front, which waits on c's endpoint in turn.
        "thread 6 'front' (process 5) waits in call on endpoint 'to-c' for a receiver",
        "thread 7 'e' (process 6) waits in call on endpoint 'to-front' for process 5 'front' to "
        "reply",
    };
    for (const char* line : lines) {
        EXPECT_NE(o.result.detail.find(line), std::string::npos) << line << "\n" << o.result.detail;
    }
}

// Processes and the scenario's threads run side by side: on two CPUs, a process and a thread
// that each compute 20 ms are done in about 20 ms, not 40.
TEST_F(ScenarioProcess, ProcessesAndThreadsRunSideBySide) {
    std::string path = write("both.scn", "machine cpus=2\nmemory preset=qemu-q35-2g\n"
                                         "process p\n  compute 20ms\n"
                                         "program t\n  compute 20ms\n"
                                         "spawn t\n");
    std::string com1;
    auto o = run(path, {}, &com1);
    ASSERT_EQ(o.status, duet::kExitOk) << o.first_failure() << com1;
    EXPECT_LT(*o.report.number("time.virtual_ns"), 30e6) << com1;
    EXPECT_EQ(o.report.number("user.processes.exited"), 1.0);
    EXPECT_EQ(o.report.number("threads.exited"), 1.0);
    EXPECT_EQ(o.report.number("user.leaked_frames"), 0.0);
}

// Without a time limit to end it first, the watchdog finds the same deadlock (every CPU idle,
// no sleeper, processes blocked in IPC) and stops the machine with the same lines, as it would
// on QEMU (qemu.ipc_deadlock, the same file) instead of leaving it hanging.
TEST_F(ScenarioProcess, TheWatchdogStopsAMachineWhoseProcessesAreDeadlockedInIpc) {
    std::string com1;
    auto o = run(DUET_SOURCE_DIR "/tests/qemu/ipc-deadlock.scn", {}, &com1); // qemu.ipc_deadlock
    EXPECT_EQ(o.result.verdict, hal_sim::Verdict::Panic) << o.result.detail;
    const char* lines[] = {
        "watchdog: every CPU is idle and no timer is due, yet threads wait:",
        "watchdog: thread 2 'a' (process 1) waits in call on endpoint 'to-b' for a receiver",
        "watchdog: thread 3 'b' (process 2) waits in call on endpoint 'to-a' for a receiver",
        "panic: watchdog: the machine is stuck (the watchdog lines above say where) (cpu 0)",
    };
    for (const char* line : lines) {
        EXPECT_TRUE(has(com1, line)) << line << "\n" << com1;
    }
    // Two checks a quarter of the default 5 s period apart, not the 60 s time limit.
    EXPECT_LT(*o.report.number("time.virtual_ns"), 5e9);
}

// A scenario without processes reports none of their metrics, so that its digest and report
// stay what they were.
TEST_F(ScenarioProcess, AScenarioWithoutProcessesReportsNoProcessMetrics) {
    std::string path = write("threads.scn", "memory preset=qemu-q35-2g\nprogram p\n  yield\n"
                                            "spawn p\n");
    std::string com1;
    auto o = run(path, {}, &com1);
    ASSERT_EQ(o.status, duet::kExitOk) << o.first_failure();
    EXPECT_FALSE(o.report.has("user.processes.started"));
    EXPECT_FALSE(o.report.has("ipc.calls"));
    EXPECT_EQ(com1.find("user: "), std::string::npos) << com1;
}

// The initrd holds the interpreter, one script a process block and the list the kernel reads.
TEST_F(ScenarioProcess, TheInitrdListsEveryProcessWithItsNameScriptAndHandles) {
    duet::Scenario s = duet::parse_scenario("memory preset=qemu-q35-2g\n"
                                            "process server serve=ping\n  serve ping\n"
                                            "process client count=2 call=ping signal=done\n"
                                            "  call ping\n  signal done\n"
                                            "process watcher wait=done\n  wait done\n",
                                            "t.scn");
    auto files = s.processes.files();
    ASSERT_EQ(files.size(), 5u);
    EXPECT_EQ(files[0].first, "user/script");
    EXPECT_EQ(files[1].first, "sys/scripts/server");
    EXPECT_EQ(files[4].first, "sys/programs");
    std::string list(files[4].second.begin(), files[4].second.end());
    EXPECT_EQ(list, "user/script name=server args=sys/scripts/server serve:ping\n"
                    "user/script name=client args=sys/scripts/client call:ping signal:done\n"
                    "user/script name=client args=sys/scripts/client call:ping signal:done\n"
                    "user/script name=watcher args=sys/scripts/watcher wait:done\n");
    // The client's script: a call on handle 1, a signal on handle 2.
    const auto& client = s.processes.processes()[1];
    ASSERT_EQ(client.code.size(), 2u);
    EXPECT_EQ(client.code[0].op, duet_script::OpCall);
    EXPECT_EQ(client.code[0].handle, 1);
    EXPECT_EQ(client.code[1].op, duet_script::OpSignal);
    EXPECT_EQ(client.code[1].handle, 2);
    EXPECT_EQ(client.code[1].value, 1u);
}

} // namespace
