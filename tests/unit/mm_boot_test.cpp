// Physical memory on the boot path: the two lines the kernel prints (the QEMU cross-check
// compares them with bare metal line for line), and how a bad map stops the machine.

#include "mm_support.hpp"

#include <core/mm/kernel_space.hpp>
#include <core/mm/physical_memory.hpp>
#include <core/sched/thread.hpp>
#include <hal_sim/error.hpp>
#include <hal_sim/physical_memory.hpp>

#include <gtest/gtest.h>

#include <sstream>
#include <string>

namespace {

using duet::test::GiB;
using duet::test::TiB;

// The "mm:" and first "frames:" lines the boot path prints, in order (later "frames:" lines,
// such as the one at the end of a run, are left out), and the "vm:" lines between them if
// `vm` is set.
std::vector<std::string> mm_lines(const std::string& com1, bool vm = false) {
    std::vector<std::string> out;
    std::istringstream in(com1);
    bool mm = false;
    bool frames = false;
    for (std::string line; std::getline(in, line);) {
        if (!mm && line.rfind("mm: ", 0) == 0) {
            mm = true;
            out.push_back(line);
        } else if (vm && mm && !frames && line.rfind("vm: ", 0) == 0) {
            out.push_back(line);
        } else if (mm && !frames && line.rfind("frames: ", 0) == 0) {
            frames = true;
            out.push_back(line);
        }
    }
    return out;
}

hal_sim::MachineConfig config(std::vector<firmware::E820Entry> memory, uint32_t cpus = 4) {
    hal_sim::MachineConfig c;
    c.cpus = cpus;
    c.memory = std::move(memory);
    return c;
}

TEST(PhysicalMemoryBoot, LogsUsableFramesAndTheAllocator) {
    hal_sim::Machine m(config(duet::test::fixture("qemu-q35-2g")));
    auto result = m.run();
    ASSERT_EQ(result.verdict, hal_sim::Verdict::Success) << result.detail;
    // 524158 usable frames on q35-2g, minus what the BIOS loader took: [0, 0x15000) (its own
    // pages and one of core stacks) and [1 MiB, 0x242000) (the initrd holding the stand-in
    // kernel, then the kernel's copy). The direct map covers RAM and those pages.
    // Used, all from the bump allocator: 11 page tables (the PML4, the PDPTs of the two kernel
    // slots mapped (the direct map's and the top one), PDs and PTs for the direct map, a PD and
    // a PT for the image and the BOOTBOOT pages, a PT for the framebuffer's last MiB, a PT for
    // the local APIC's window, a PT for the kernel stacks), the four CPUs' kernel stacks (16
    // frames), and the allocator's metadata.
    // The same lines as under the real BIOS loader with this map and a kernel of this size.
    std::vector<std::string> expected = {
        "mm: 523815 usable frames (2046 MiB) in 2 areas",
        "vm: direct map 2096604 KiB at 0xffff800000000000 in 0 1G, 1022 2M, 887 4K pages; "
        "11 tables",
        "vm: W^X holds; kernel stacks 16 KiB each, 32768 slots",
        "frames: total 523815, free 523610, used 205, reserved 0",
    };
    EXPECT_EQ(mm_lines(m.com1().transcript(), true), expected) << m.com1().transcript();
    EXPECT_TRUE(core::mm::check_frame_accounting());
    EXPECT_EQ(core::mm::frames().audit(), nullptr);
}

TEST(PhysicalMemoryBoot, TheLinesFollowFromTheMapAlone) {
    struct Case {
        const char* fixture;
        uint32_t cpus;
    };
    for (const Case& c : {Case{"qemu-q35-2g", 1}, Case{"qemu-q35-2g", 7}, Case{"qemu-q35-8g", 2},
                          Case{"qemu-pc-2g", 4}, Case{"qemu-q35-2g-kvm", 3}}) {
        hal_sim::Machine m(config(duet::test::fixture(c.fixture), c.cpus));
        ASSERT_EQ(m.run().verdict, hal_sim::Verdict::Success) << c.fixture;
        // What the lines must say, computed independently of the boot path: the BIOS loader
        // takes [0, 0x14000) and a page of stacks per four cores, and the initrd and the kernel
        // copy from 1 MiB on (the firmware's handover says how big they came out).
        const firmware::Handover& h = m.boot_state().handover;
        uint64_t low = 0x14000 + (c.cpus + 3) / 4 * 4096;
        uint64_t loaded = h.kernel + h.kernel_size - 0x100000;
        EXPECT_EQ(h.initrd, 0x100000u);
        EXPECT_EQ(h.kernel, h.initrd + h.initrd_size);
        auto n = duet::test::normalize_e820(duet::test::fixture(c.fixture),
                                            {{0, low}, {0x100000, loaded}});
        // What the loader took is a hole in the BOOTBOOT map, not a reservation: not counted.
        uint64_t holes = (low + loaded) / 4096;
        uint64_t usable = n.summary.usable_frames;
        uint64_t total = n.summary.ram_frames - holes;
        uint64_t meta =
            core::mm::FrameAllocator::metadata_bytes(n.areas.data(), n.areas.size()) / 4096;
        // The bump allocator also gave the kernel address space its tables (as a walk of them
        // counts; nothing after the hand-over adds one here) and every CPU its kernel stack.
        uint64_t tables = 0;
        {
            hal_sim::Machine::CpuScope scope(m, 0);
            tables = core::mm::kernel_space().stats().table_frames;
        }
        uint64_t used = meta + tables + c.cpus * (core::sched::kStackSize / 4096);
        std::vector<std::string> expected = {
            "mm: " + std::to_string(usable) + " usable frames (" + std::to_string(usable / 256) +
                " MiB) in " + std::to_string(n.summary.areas) + " areas",
            "frames: total " + std::to_string(total) + ", free " + std::to_string(total - used) +
                ", used " + std::to_string(used) + ", reserved 0",
        };
        EXPECT_EQ(mm_lines(m.com1().transcript()), expected) << c.fixture << " " << c.cpus;
        EXPECT_TRUE(core::mm::check_frame_accounting());
    }
}

TEST(PhysicalMemoryBoot, ATerabyteMachineBoots) {
    hal_sim::Machine m(config(duet::test::q35_map(TiB), 2));
    ASSERT_EQ(m.run().verdict, hal_sim::Verdict::Success);
    auto lines = mm_lines(m.com1().transcript());
    ASSERT_EQ(lines.size(), 2u);
    // [0x15000, 636 KiB), [0x242000, 2 GiB) and [4 GiB, 1026 GiB):
    // 138 + 523710 + 267911168 frames.
    EXPECT_EQ(lines[0], "mm: 268435016 usable frames (1048574 MiB) in 3 areas");
    EXPECT_TRUE(core::mm::check_frame_accounting());
}

TEST(PhysicalMemoryBoot, AnEntryBeyond52BitsStopsTheKernelWithAReason) {
    hal_sim::Machine m(config(duet::test::fixture("qemu-q35-2g"), 1));
    bootboot_abi::Info* info = m.writable_boot_info();
    size_t n = info->mmap_count();
    info->mmap[n] =
        bootboot_abi::MmapEntry::make(uint64_t{1} << 52, 0x1000, bootboot_abi::MmapType::Free);
    info->header.size += sizeof(bootboot_abi::MmapEntry);
    auto result = m.run();
    EXPECT_EQ(result.verdict, hal_sim::Verdict::Panic);
    EXPECT_NE(m.com1().transcript().find(
                  "mm: mmap entry 9 [mem 0x0010000000000000-0x0010000000000fff] beyond the "
                  "52-bit physical address space"),
              std::string::npos)
        << m.com1().transcript();
}

TEST(PhysicalMemoryBoot, TheSimulatorRefusesSuchAMapToo) {
    std::vector<firmware::E820Entry> map = {{0x0, 0x9fc00, 1, 1},
                                            {0xfffffffff0000000, 0x1000, 2, 1}};
    try {
        hal_sim::usable_pages(map);
        FAIL() << "expected a ConfigError";
    } catch (const hal_sim::ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find("52-bit"), std::string::npos) << e.what();
    }
}

} // namespace
