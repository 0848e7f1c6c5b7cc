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

// --- threads (docs/user-space.md, "Threads") ---

// How long process `name`'s run took by its cycles line (virtual ns in the simulator).
uint64_t took_ns(const std::string& com1, const std::string& name) {
    std::string key = "('" + name + "') took ";
    size_t at = com1.find(key);
    return at == std::string::npos ? ~uint64_t{0} : std::stoull(com1.substr(at + key.size()));
}

// One thread's fault kills the whole process at once, wherever its siblings are: blocked in
// recv (taken out of the endpoint's queue), asleep for seconds (woken), computing in ring 3
// for seconds (ended at the next interrupt). Without the stopping, the process would last 3 s.
TEST_F(ScenarioProcess, OneThreadsFaultEndsItsProcessWhereverTheOtherThreadsAre) {
    std::string path = write("crash.scn", "machine cpus=4\nmemory preset=qemu-q35-2g\n"
                                          "process crasher serve=idle\n"
                                          "  thread\n    serve idle\n"
                                          "  thread\n    sleep 3s\n"
                                          "  thread\n    compute 3s\n"
                                          "  thread\n    sleep 10ms\n    write kernel\n"
                                          "  sleep 3s\n"
                                          "process idler call=idle\n  sleep 100ms\n");
    std::string com1;
    auto o = run(path, {}, &com1);
    ASSERT_EQ(o.status, duet::kExitOk) << o.first_failure() << com1;
    EXPECT_TRUE(has(com1, "user: killed 'crasher' (process 1, thread 7 #4): user write at "
                          "0xffffffffffe02000, protection, ip 0x0"))
        << com1;
    EXPECT_LT(took_ns(com1, "crasher"), 20'000'000u) << com1;
    EXPECT_LT(*o.report.number("time.virtual_ns"), 150e6) << com1;
    EXPECT_EQ(o.report.number("user.processes.killed"), 1.0);
    EXPECT_EQ(o.report.number("user.leaked_frames"), 0.0);
    EXPECT_EQ(o.report.number("ipc.objects_left"), 0.0);
}

// A thread's exit ends the process with its code; the others, computing, end with it.
TEST_F(ScenarioProcess, AThreadsExitEndsItsProcessWithItsCode) {
    std::string path = write("quit.scn", "machine cpus=2\nmemory preset=qemu-q35-2g\n"
                                         "process quitter\n"
                                         "  thread count=2\n    compute 3s\n"
                                         "  thread\n    sleep 5ms\n    exit 3\n"
                                         "  compute 3s\n");
    std::string com1;
    auto o = run(path, {}, &com1);
    ASSERT_EQ(o.status, duet::kExitOk) << o.first_failure() << com1;
    // 3 maps, 3 thread starts, a sleep and the exit.
    EXPECT_TRUE(has(com1, "user: 'quitter' (process 1) exited with code 3 after 8 system calls"))
        << com1;
    EXPECT_LT(took_ns(com1, "quitter"), 20'000'000u) << com1;
    EXPECT_EQ(o.report.number("user.processes.failed"), 1.0);
}

// Without an error or an exit, a process lasts as long as its last thread: its first thread
// ends early, the others log after it and the process exits with code 0.
TEST_F(ScenarioProcess, AProcessEndsWithItsLastThread) {
    std::string path = write("last.scn", "machine cpus=2\nmemory preset=qemu-q35-2g\n"
                                         "process p\n"
                                         "  thread count=3\n    sleep 5ms\n    log late\n"
                                         "  log early\n");
    std::string com1;
    auto o = run(path, {}, &com1);
    ASSERT_EQ(o.status, duet::kExitOk) << o.first_failure() << com1;
    size_t early = com1.find("user: p: early\n");
    size_t late = com1.find("user: p: late\n");
    ASSERT_NE(early, std::string::npos) << com1;
    ASSERT_NE(late, std::string::npos) << com1;
    EXPECT_LT(early, late) << com1;
    EXPECT_GE(took_ns(com1, "p"), 5'000'000u) << com1;
    // 3 maps, 3 thread starts, 4 logs, 3 sleeps, 4 thread exits.
    EXPECT_TRUE(has(com1, "user: 'p' (process 1) exited with code 0 after 17 system calls"))
        << com1;
    EXPECT_EQ(o.report.number("user.leaked_frames"), 0.0);
}

// Threads share the process's handles: four threads call one endpoint at once, four serve it,
// and every call is answered, under the schedules that interleave CPUs at every point.
TEST_F(ScenarioProcess, ThreadsShareTheirProcesssHandles) {
    std::string path = write("share.scn", "machine cpus=4\nmemory preset=qemu-q35-2g\n"
                                          "process server serve=ping\n"
                                          "  thread count=3\n    serve ping\n"
                                          "  serve ping\n"
                                          "process client call=ping\n"
                                          "  thread count=3\n    repeat 25\n      call ping "
                                          "bytes=100\n"
                                          "  repeat 25\n    call ping bytes=100\n");
    for (const char* schedule : {"coarse", "random", "pct"}) {
        duet::RunOptions options;
        std::string error;
        options.schedule = *hal_sim::parse_schedule(schedule, &error);
        std::string com1;
        auto o = run(path, options, &com1);
        ASSERT_EQ(o.status, duet::kExitOk) << schedule << o.first_failure() << com1;
        EXPECT_EQ(o.report.number("ipc.calls"), 100.0) << schedule;
        EXPECT_EQ(o.report.number("user.processes.failed"), 0.0) << schedule << com1;
        EXPECT_EQ(o.report.number("ipc.objects_left"), 0.0) << schedule;
    }
}

} // namespace
