// User space in the simulator: the programs of user/ (their ELF files loaded by the core from
// the initrd, their host builds run in their fibers in user mode) go through the same system
// calls, copies and fault path as on the machine, and print the same lines as the QEMU tests
// check (tests/CMakeLists.txt, qemu.user_*).

#include "test_support.hpp"

#include <hal_sim/firmware.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/ustar_writer.hpp>

#include <core/user/abi.hpp>
#include <duet/script.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

using hal_sim::Machine;
using hal_sim::MachineConfig;
using hal_sim::Verdict;

std::vector<uint8_t> read_program(const std::string& name) {
    std::ifstream in(std::string(DUET_USER_ELF_DIR) + "/" + name, std::ios::binary);
    EXPECT_TRUE(in.good()) << name;
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Program {
    std::string path;
    std::vector<uint8_t> bytes;
    std::string grants = {}; // the handles sys/programs gives it ("serve:ping"...)
};

std::vector<Program> the_programs() {
    return {{"user/hello", read_program("hello")},
            {"user/bad-pointer", read_program("bad-pointer")},
            {"user/bad-kernel", read_program("bad-kernel")}};
}

// A machine whose initrd holds the stand-in kernel, sys/programs and `programs`.
struct UserMachine {
    std::vector<Program> programs;
    std::vector<Program> extra;
    std::string list;
    std::vector<uint8_t> initrd;
    std::unique_ptr<Machine> machine;

    // `data`: more files, not in sys/programs (their grants unused).
    UserMachine(uint32_t cpus, std::vector<Program> p, uint64_t seed = 1,
                const char* schedule = "coarse", std::vector<Program> data = {})
        : programs(std::move(p)), extra(std::move(data)) {
        std::vector<hal_sim::UstarFile> files;
        files.emplace_back("sys/core", std::span(hal_sim::model_kernel_file()));
        for (const Program& program : programs) {
            list += program.path + (program.grants.empty() ? "" : " " + program.grants) + "\n";
        }
        files.emplace_back("sys/programs",
                           std::span(reinterpret_cast<const uint8_t*>(list.data()), list.size()));
        for (const Program& program : programs) {
            files.emplace_back(program.path, std::span(program.bytes));
        }
        for (const Program& file : extra) {
            files.emplace_back(file.path, std::span(file.bytes));
        }
        MachineConfig c;
        c.cpus = cpus;
        c.memory = duet::test::fixture("qemu-q35-2g");
        c.initrd = hal_sim::make_ustar(files);
        c.seed = seed;
        std::string error;
        c.schedule = *hal_sim::parse_schedule(schedule, &error);
        machine = std::make_unique<Machine>(c);
    }

    std::string run() {
        auto result = machine->run();
        EXPECT_EQ(result.verdict, Verdict::Success) << result.detail;
        return machine->com1().transcript();
    }
};

bool has_line(const std::string& text, const std::string& pattern) {
    std::regex re(pattern);
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (std::regex_match(line, re)) {
            return true;
        }
    }
    return false;
}

// The lines the QEMU tests expect, but the fault's instruction pointer: the simulator has none
// for host code (ip 0).
void expect_the_machines_lines(const std::string& com1) {
    const char* patterns[] = {
        "user: hello: hello from user space",
        "user: hello: back after a yield and a 2 ms sleep",
        R"(user: 'hello' \(process 1\) exited with code 0 after 5 system calls)",
        "user: bad-pointer: every bad argument was refused with an error",
        R"(user: 'bad-pointer' \(process 2\) exited with code 0 after 10 system calls)",
        "user: bad-kernel: reading kernel memory",
        R"(user: killed 'bad-kernel' \(process 3, thread [0-9]+\): user read at 0xffffffffffe02000, protection, ip 0x0)",
        R"(user: 'bad-kernel' \(process 3\) was killed after 1 system calls)",
        R"(user: 3 processes: 2 exited, 1 killed; user and page-table frames before ([0-9]+), after \1)",
        R"(workload: none \(no sys/workload in the initrd\))",
        // hello 5, bad-pointer 10, bad-kernel 1; bad-pointer's five bad buffers.
        "user: 16 system calls, 5 refused for a bad address",
    };
    for (const char* p : patterns) {
        EXPECT_TRUE(has_line(com1, p)) << p << "\n" << com1;
    }
}

TEST(UserSim, RunsThePrograms) {
    UserMachine m(1, the_programs());
    expect_the_machines_lines(m.run());
}

TEST(UserSim, RunsTheProgramsOnFourCpus) {
    UserMachine m(4, the_programs());
    std::string com1 = m.run();
    expect_the_machines_lines(com1);
    EXPECT_TRUE(has_line(com1, "smp: 4 cpus online, .*")) << com1;
}

TEST(UserSim, TheBadKernelReadIsAUserPageFaultOnItsCpu) {
    UserMachine m(1, {{"user/bad-kernel", read_program("bad-kernel")}});
    m.run();
    const hal_sim::MmuState& mmu = m.machine->cpu(0).mmu;
    EXPECT_EQ(mmu.cr2, 0xffff'ffff'ffe0'2000u);
    EXPECT_EQ(mmu.page_faults, 1u);
}

TEST(UserSim, SameProgramsSameOutput) {
    UserMachine a(2, the_programs());
    UserMachine b(2, the_programs());
    EXPECT_EQ(a.run(), b.run());
}

TEST(UserSim, ACorruptProgramIsRefusedWithAReasonAndTheOthersRun) {
    std::vector<Program> programs = the_programs();
    std::vector<uint8_t> broken = programs[0].bytes;
    broken[18] = 3; // e_machine: EM_386
    programs.insert(programs.begin(), Program{"user/broken", broken});
    programs.push_back({"user/missing", {}});
    UserMachine m(1, programs);
    // Renumbered: the broken program takes no process.
    std::string com1 = m.run();
    EXPECT_TRUE(has_line(com1, "user: user/broken is unusable: not an x86_64 program")) << com1;
    EXPECT_TRUE(has_line(com1, "user: user/missing is unusable: shorter than an ELF header"))
        << com1;
    EXPECT_TRUE(has_line(com1, "user: hello: back after a yield and a 2 ms sleep")) << com1;
    EXPECT_TRUE(has_line(
        com1,
        R"(user: 3 processes: 2 exited, 1 killed; user and page-table frames before ([0-9]+), after \1)"))
        << com1;
}

} // namespace

namespace {

// bad-instruction is bare metal only (its point is an instruction the simulator does not
// model): listed in a simulated machine's initrd, it stops the run with a reason.
TEST(UserSim, AProgramWithoutAHostBuildStopsTheRunWithAReason) {
    UserMachine m(1, {{"user/bad-instruction", read_program("bad-instruction")}});
    auto result = m.machine->run();
    EXPECT_EQ(result.verdict, Verdict::Panic);
    const std::string& com1 = m.machine->com1().transcript();
    EXPECT_TRUE(has_line(
        com1, "panic: no host build of the user program 'bad-instruction' is linked into the "
              "simulator"))
        << com1;
}

} // namespace

// --- handles and IPC ---------------------------------------------------------------------------

namespace {

Program program(const std::string& name, const std::string& grants) {
    return {"user/" + name, read_program(name), grants};
}

// A server and `clients` clients of it.
std::vector<Program> ping(int clients) {
    std::vector<Program> p{program("ping-server", "serve:ping")};
    for (int i = 0; i < clients; ++i) {
        p.push_back(program("ping-client", "call:ping"));
    }
    return p;
}

// The number after `prefix` on the line that starts with it, or -1.
long long number_after(const std::string& text, const std::string& prefix) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(prefix, 0) == 0) {
            return std::stoll(line.substr(prefix.size()));
        }
    }
    return -1;
}

void expect_nothing_left(const std::string& com1, int processes) {
    EXPECT_TRUE(has_line(
        com1, "user: " + std::to_string(processes) +
                  R"( processes: .*; user and page-table frames before ([0-9]+), after \1)"))
        << com1;
    EXPECT_TRUE(has_line(com1, "user: .*; left: 0 endpoints, 0 notifications")) << com1;
}

// One client, one CPU: 100 round trips with their replies checked, and every call and every
// reply goes straight to the blocked peer (a direct switch) rather than through the run queue.
TEST(UserSimIpc, PingPongOnOneCpuSwitchesDirectlyBothWays) {
    UserMachine m(1, ping(1));
    std::string com1 = m.run();
    EXPECT_TRUE(has_line(com1, "user: ping-client: round trips, every reply checked: 100")) << com1;
    EXPECT_TRUE(has_line(com1, "user: ping-server: every caller has gone; calls answered: 100"))
        << com1;
    EXPECT_TRUE(has_line(
        com1, R"(user: 'ping-server' \(process 1\) exited with code 0 after 103 system calls)"))
        << com1;
    EXPECT_TRUE(has_line(
        com1, R"(user: 'ping-client' \(process 2\) exited with code 0 after 102 system calls)"))
        << com1;
    // The server waits in recv before the first call: all 100 calls and all 100 replies are
    // direct switches.
    EXPECT_EQ(number_after(com1, "user: 100 IPC calls, "), 200) << com1;
    expect_nothing_left(com1, 2);
}

// Three clients of one server on four CPUs: every reply goes to its own caller.
TEST(UserSimIpc, SeveralClientsOnOneServerAcrossFourCpus) {
    UserMachine m(4, ping(3));
    std::string com1 = m.run();
    std::istringstream in(com1);
    int checked = 0;
    for (std::string line; std::getline(in, line);) {
        checked += line == "user: ping-client: round trips, every reply checked: 100" ? 1 : 0;
    }
    EXPECT_EQ(checked, 3) << com1;
    EXPECT_TRUE(has_line(com1, "user: ping-server: every caller has gone; calls answered: 300"))
        << com1;
    EXPECT_TRUE(has_line(com1, "user: 300 IPC calls, [0-9]+ direct switches, 1 peer gone; .*"))
        << com1;
    expect_nothing_left(com1, 4);
    // Across CPUs: the programs ran on more than one (each CPU's switches, from the report).
    int busy = 0;
    for (int cpu = 0; cpu < 4; ++cpu) {
        busy += number_after(com1, "sched: cpu " + std::to_string(cpu) + ": ") > 10 ? 1 : 0;
    }
    EXPECT_GE(busy, 2) << com1;
}

// Interleaved at every lock and atomic (the random schedule): the endpoint's queues, the
// direct switches and the wake-ups of the three clients and the server race in new ways under
// each seed; every reply must still reach its own caller and nothing may be left.
TEST(UserSimIpc, ClientsAndServerUnderRandomInterleavings) {
    for (uint64_t seed = 1; seed <= 6; ++seed) {
        UserMachine m(4, ping(3), seed, "random");
        std::string com1 = m.run();
        EXPECT_TRUE(has_line(com1, "user: ping-server: every caller has gone; calls answered: 300"))
            << "seed " << seed << "\n"
            << com1;
        expect_nothing_left(com1, 4);
        EXPECT_GT(m.machine->stalls(), 0u) << "seed " << seed; // it did interleave
    }
}

TEST(UserSimIpc, SameProgramsSameOutput) {
    UserMachine a(4, ping(3));
    UserMachine b(4, ping(3));
    EXPECT_EQ(a.run(), b.run());
}

// Each bad argument its error (the program checks each and logs the first that failed).
TEST(UserSimIpc, EveryBadArgumentGetsAnError) {
    UserMachine m(1, {program("ipc-errors", "call:ping")});
    std::string com1 = m.run();
    EXPECT_TRUE(
        has_line(com1, "user: ipc-errors: every bad IPC argument was refused with an error"))
        << com1;
    EXPECT_TRUE(has_line(com1, R"(user: 'ipc-errors' \(process 1\) exited with code 0 after .*)"))
        << com1;
    expect_nothing_left(com1, 1);
}

// A server killed while it holds a call: its caller gets PeerGone (and again on the next call:
// the endpoint has no receiver left), then signals the waiter's notification.
TEST(UserSimIpc, TheCallerOfADeadServerGetsPeerGone) {
    for (uint32_t cpus : {1u, 4u}) {
        UserMachine m(cpus, {program("crash-server", "serve:crash"),
                             program("crash-client", "call:crash signal:done"),
                             program("waiter", "wait:done")});
        std::string com1 = m.run();
        EXPECT_TRUE(has_line(
            com1,
            R"(user: killed 'crash-server' \(process 1, thread [0-9]+\): user read at 0xffffffffffe02000, protection, ip 0x0)"))
            << com1;
        EXPECT_TRUE(
            has_line(com1, "user: crash-client: the server died holding my call: PeerGone, twice"))
            << com1;
        EXPECT_TRUE(has_line(com1, "user: waiter: woken with bits 2")) << com1;
        EXPECT_TRUE(has_line(com1, "user: 0 IPC calls, [0-9]+ direct switches, 2 peer gone; .*"))
            << com1;
        expect_nothing_left(com1, 3);
    }
}

// The clients are all gone before the server starts: its recv gets PeerGone at once rather than
// waiting for ever, and a client whose server never comes gets PeerGone too.
TEST(UserSimIpc, NobodyWaitsForAPeerThatIsGone) {
    UserMachine m(1,
                  {program("ping-client", "call:nobody"), program("ping-server", "serve:alone")});
    std::string com1 = m.run();
    EXPECT_TRUE(has_line(com1, "user: ping-client: call failed: result -7")) << com1;
    EXPECT_TRUE(has_line(com1, "user: ping-server: every caller has gone; calls answered: 0"))
        << com1;
    expect_nothing_left(com1, 2);
}

// sys/programs names handles it cannot give: the program is not started, the others are.
TEST(UserSimIpc, ABadGrantIsReportedAndTheProgramNotStarted) {
    UserMachine m(1, {program("ping-client", "call:ping bogus:x"), program("hello", ""),
                      program("waiter", "wait:ping")});
    std::string com1 = m.run();
    EXPECT_TRUE(has_line(com1, "user: user/ping-client: cannot give it a handle for 'bogus:x'"))
        << com1;
    // `ping` is an endpoint: it cannot also be a notification.
    EXPECT_TRUE(has_line(com1, "user: user/waiter: cannot give it a handle for 'wait:ping'"))
        << com1;
    EXPECT_TRUE(has_line(com1, "user: hello: back after a yield and a 2 ms sleep")) << com1;
    expect_nothing_left(com1, 1);
}

} // namespace

namespace {

// Threads: thread_start refuses bad entries and stack tops, and an eighth live thread; seven
// workers, each on its own stack, leave marks in memory they share, twice, the second time in
// the slots the first left.
TEST(UserSim, StartsThreadsUpToTheLimitAndTakesTheirSlotsAgain) {
    for (uint32_t cpus : {1u, 4u}) {
        UserMachine m(cpus, {{"user/threads", read_program("threads")}});
        std::string com1 = m.run();
        EXPECT_TRUE(has_line(com1, "user: threads: every bad start refused; two rounds of 7 "
                                   "threads, each slot taken twice"))
            << com1;
        // NOTE: how many system calls depends on the schedule: a wait may take several
        // workers' bits, and a start may find a slot whose worker is on its way out.
        EXPECT_TRUE(has_line(
            com1, R"(user: 'threads' \(process 1\) exited with code 0 after [0-9]+ system calls)"))
            << com1;
        EXPECT_TRUE(has_line(
            com1,
            R"(user: 1 processes: 1 exited, 0 killed; user and page-table frames before ([0-9]+), after \1)"))
            << com1;
    }
}

// map and unmap: the program checks its pages and each refusal; the kernel reads a mapped page
// as user memory; the pages it leaves mapped come back when it exits.
TEST(UserSim, MapsAndUnmapsAnonymousMemory) {
    for (uint32_t cpus : {1u, 4u}) {
        UserMachine m(cpus, {{"user/map-memory", read_program("map-memory")}});
        std::string com1 = m.run();
        EXPECT_TRUE(has_line(com1, "user: map-memory: from mapped memory")) << com1;
        EXPECT_TRUE(has_line(
            com1, "user: map-memory: mapped, used and unmapped memory; every bad request refused"))
            << com1;
        EXPECT_TRUE(has_line(
            com1,
            R"(user: 1 processes: 1 exited, 0 killed; user and page-table frames before ([0-9]+), after \1)"))
            << com1;
        EXPECT_TRUE(has_line(com1, "user: 17 system calls, 1 refused for a bad address")) << com1;
    }
}

} // namespace

// --- scenario processes' scripts ----------------------------------------------------------------

namespace {

// A script file: the header, then `code`, then `text`.
std::vector<uint8_t> script(std::vector<duet_script::Instruction> code, std::string text = "",
                            uint32_t magic = duet_script::kMagic) {
    duet_script::Header h;
    h.magic = magic;
    h.count = static_cast<uint32_t>(code.size());
    h.text_offset = static_cast<uint32_t>(sizeof h + code.size() * sizeof code[0]);
    h.text_bytes = static_cast<uint32_t>(text.size());
    std::vector<uint8_t> out(reinterpret_cast<const uint8_t*>(&h),
                             reinterpret_cast<const uint8_t*>(&h) + sizeof h);
    for (const auto& in : code) {
        const auto* p = reinterpret_cast<const uint8_t*>(&in);
        out.insert(out.end(), p, p + sizeof in);
    }
    out.insert(out.end(), text.begin(), text.end());
    return out;
}

// The interpreter trusts nothing in its script (the kernel maps whatever file args= names):
// each malformed one ends its process with kBadScript and a line that says what was wrong,
// and the well-formed one beside them runs.
TEST(UserSimScript, AMalformedScriptEndsItsProcessWithAReason) {
    using duet_script::Instruction;
    std::vector<uint8_t> elf = read_program("script");
    std::vector<Program> programs;
    std::vector<Program> scripts;
    auto add = [&](const std::string& name, std::vector<uint8_t> bytes) {
        programs.push_back({"user/script", elf, "name=" + name + " args=sys/scripts/" + name});
        scripts.push_back({"sys/scripts/" + name, std::move(bytes)});
    };
    add("good",
        script({{duet_script::OpLog, 0, 0, 5, 0}, {duet_script::OpExit, 0, 0, 0, 3}}, "fine!"));
    add("magic", script({}, "", 0x12345678));
    add("opcode", script({{200, 0, 0, 0, 0}}));
    add("text", script({{duet_script::OpLog, 0, 0, 10, 0}}, "short"));
    add("block", script({{duet_script::OpRepeat, 0, 5, 2, 0}, {duet_script::OpYield, 0, 0, 0, 0}}));
    add("nested", script({{duet_script::OpRepeat, 0, 2, 2, 0},
                          {duet_script::OpRepeat, 0, 2, 2, 0},
                          {duet_script::OpYield, 0, 0, 0, 0}}));
    std::vector<Instruction> deep;
    for (uint16_t i = 0; i < 9; ++i) {
        deep.push_back({duet_script::OpRepeat, 0, static_cast<uint16_t>(9 - i), 1, 0});
    }
    deep.push_back({duet_script::OpYield, 0, 0, 0, 0});
    add("deep", script(deep));
    // The header counts more instructions than the file holds.
    std::vector<uint8_t> cut = script({{duet_script::OpYield, 0, 0, 0, 0}});
    cut[4] = 200;
    add("cut", cut);
    // The same, the text's offset moved to match: the rest of the page is zeros, which are no
    // instruction.
    uint32_t offset = 16 + 200 * 16;
    std::memcpy(&cut[8], &offset, sizeof offset);
    add("zeros", cut);
    // Threads: none to start, a block past the script's end, a stack where nothing may be mapped.
    add("nothread",
        script({{duet_script::OpThread, 0, 1, 0, duet_abi::kMapBase}, {duet_script::OpYield}}));
    add("threadblock",
        script({{duet_script::OpThread, 1, 3, 0, duet_abi::kMapBase}, {duet_script::OpYield}}));
    add("threadstack", script({{duet_script::OpThread, 1, 1, 0, 0}, {duet_script::OpYield}}));
    programs.push_back({"user/script", elf, "name=nowhere args=sys/scripts/none"});
    UserMachine m(2, programs, 1, "coarse", scripts);
    std::string com1 = m.run();
    const char* lines[] = {
        "user: good: fine!",
        R"(user: 'good' \(process 1\) exited with code 3 after 2 system calls)",
        "user: magic: not a script, or too long: magic 305419896",
        R"(user: 'magic' \(process 2\) exited with code 65 .*)",
        "user: opcode: an unknown instruction at 0",
        "user: text: a text outside the script at offset 0",
        "user: block: a repeat's block out of place at instruction 0",
        "user: nested: a repeat's block out of place at instruction 1",
        "user: deep: a repeat's block out of place at instruction 8",
        R"(user: 'deep' \(process 7\) exited with code 65 .*)",
        "user: cut: a header that does not add up: instructions 200",
        "user: zeros: an unknown instruction at 1",
        R"(user: 'zeros' \(process 9\) exited with code 65 .*)",
        "user: nothread: a thread's block out of place at instruction 0",
        "user: threadblock: a thread's block out of place at instruction 0",
        "user: threadstack: mapping a thread's stack failed: error -3",
        R"(user: 'threadstack' \(process 12\) exited with code 3 .*)",
        "user: user/script: args=sys/scripts/none: not in the initrd",
        R"(user: 12 processes: 12 exited, 0 killed; user and page-table frames before ([0-9]+), after \1)",
    };
    for (const char* line : lines) {
        EXPECT_TRUE(has_line(com1, line)) << line << "\n" << com1;
    }
}

} // namespace
