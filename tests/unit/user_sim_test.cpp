// User space in the simulator: the programs of user/ (their ELF files loaded by the core from
// the initrd, their host builds run in their fibers in user mode) go through the same system
// calls, copies and fault path as on the machine, and print the same lines as the QEMU tests
// check (tests/CMakeLists.txt, qemu.user_*).

#include "test_support.hpp"

#include <hal_sim/firmware.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/ustar_writer.hpp>

#include <gtest/gtest.h>

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
};

std::vector<Program> the_programs() {
    return {{"user/hello", read_program("hello")},
            {"user/bad-pointer", read_program("bad-pointer")},
            {"user/bad-kernel", read_program("bad-kernel")}};
}

// A machine whose initrd holds the stand-in kernel, sys/programs and `programs`.
struct UserMachine {
    std::vector<Program> programs;
    std::string list;
    std::vector<uint8_t> initrd;
    std::unique_ptr<Machine> machine;

    UserMachine(uint32_t cpus, std::vector<Program> p) : programs(std::move(p)) {
        std::vector<hal_sim::UstarFile> files;
        files.emplace_back("sys/core", std::span(hal_sim::model_kernel_file()));
        for (const Program& program : programs) {
            list += program.path + "\n";
        }
        files.emplace_back("sys/programs",
                           std::span(reinterpret_cast<const uint8_t*>(list.data()), list.size()));
        for (const Program& program : programs) {
            files.emplace_back(program.path, std::span(program.bytes));
        }
        MachineConfig c;
        c.cpus = cpus;
        c.memory = duet::test::fixture("qemu-q35-2g");
        c.initrd = hal_sim::make_ustar(files);
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
        R"(user: 3 processes: 2 exited, 1 killed; frames in use before ([0-9]+), after \1)",
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
        com1, R"(user: 3 processes: 2 exited, 1 killed; frames in use before ([0-9]+), after \1)"))
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
