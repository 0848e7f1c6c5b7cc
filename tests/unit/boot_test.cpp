// The core's boot path on the simulated machine: what it prints on COM1 and how it stops.

#include "test_support.hpp"

#include <hal_sim/error.hpp>
#include <hal_sim/machine.hpp>

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace {

using hal_sim::Machine;
using hal_sim::MachineConfig;
using hal_sim::Verdict;

MachineConfig q35(uint32_t cpus) {
    MachineConfig c;
    c.cpus = cpus;
    c.memory = duet::test::fixture("qemu-q35-2g");
    return c;
}

std::vector<std::string> lines_with_prefix(const std::string& text, const std::string& prefix) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind(prefix, 0) == 0) {
            out.push_back(line);
        }
    }
    return out;
}

TEST(Boot, PrintsBannerAndMemoryMapThenStopsWithSuccess) {
    Machine m(q35(4));
    auto result = m.run();
    EXPECT_EQ(result.verdict, Verdict::Success) << result.detail;
    const std::string& com1 = m.com1().transcript();
    EXPECT_EQ(lines_with_prefix(com1, "boot: Duet ").size(), 1u) << com1;
    EXPECT_NE(com1.find("boot: bootboot protocol 1, 4 cores, bsp 0"), std::string::npos) << com1;
    // As the BIOS loader hands it over: [0, 0x15000) is its own (0x14000 and one page of
    // stacks for four cores); the initrd (72 KiB: the stand-in kernel in a ustar) at 1 MiB and
    // the kernel copy (1216 KiB) right after it, to 0x242000.
    std::vector<std::string> expected = {
        "mmap: [mem 0x0000000000015000-0x000000000009fbff] free 555 KiB",
        "mmap: [mem 0x000000000009fc00-0x000000000009ffff] used 1 KiB",
        "mmap: [mem 0x00000000000f0000-0x00000000000fffff] used 64 KiB",
        "mmap: [mem 0x0000000000242000-0x000000007ffdefff] free 2094708 KiB",
        "mmap: [mem 0x000000007ffdf000-0x000000007fffffff] used 132 KiB",
        "mmap: [mem 0x00000000b0000000-0x00000000bfffffff] used 256 MiB",
        "mmap: [mem 0x00000000fed1c000-0x00000000fed1ffff] used 16 KiB",
        "mmap: [mem 0x00000000fffc0000-0x00000000ffffffff] used 256 KiB",
        "mmap: [mem 0x000000fd00000000-0x000000ffffffffff] used 12 GiB",
        "mmap: 9 entries, 2095263 KiB free",
    };
    EXPECT_EQ(lines_with_prefix(com1, "mmap: "), expected);
}

TEST(Boot, SameMachineSameOutput) {
    Machine a(q35(2));
    Machine b(q35(2));
    a.run();
    b.run();
    EXPECT_EQ(a.com1().transcript(), b.com1().transcript());
}

TEST(Boot, CorruptBootInformationIsAPanicWithAReason) {
    Machine m(q35(1));
    bootboot_abi::Info* info = m.writable_boot_info();
    info->header.magic[0] = 'X';
    auto result = m.run();
    EXPECT_EQ(result.verdict, Verdict::Panic);
    EXPECT_NE(m.com1().transcript().find("boot: unusable BOOTBOOT information: bad magic"),
              std::string::npos)
        << m.com1().transcript();
}

TEST(Boot, UnsortedMapIsRejectedByTheCore) {
    Machine m(q35(1));
    bootboot_abi::Info* info = m.writable_boot_info();
    std::swap(info->mmap[0], info->mmap[1]);
    auto result = m.run();
    EXPECT_EQ(result.verdict, Verdict::Panic);
    EXPECT_NE(m.com1().transcript().find("not sorted"), std::string::npos);
}

TEST(Boot, AllCoresEnterAndTheFirmwareReportsThem) {
    MachineConfig c = q35(256);
    c.firmware = hal_sim::Firmware::Duet;
    Machine m(c);
    EXPECT_EQ(m.boot_info().bootboot->header.numcores, 256);
    EXPECT_EQ(m.run().verdict, Verdict::Success);
}

TEST(Boot, AMapWithoutRoomForTheLoaderIsAConfigError) {
    MachineConfig c;
    c.memory = {{0x0, 0x9fc00, 1, 1}, {0x100000, 0x800000, 1, 1}};
    try {
        Machine m(c);
        FAIL() << "expected a ConfigError";
    } catch (const hal_sim::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("no usable entry is large enough"), std::string::npos)
            << e.what();
    }
}

TEST(Boot, CpuCountOutOfRangeIsAConfigError) {
    EXPECT_THROW(Machine{q35(0)}, hal_sim::ConfigError);
    EXPECT_THROW(Machine{q35(257)}, hal_sim::ConfigError);
}

} // namespace
