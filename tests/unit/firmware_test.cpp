// The simulated firmware (hal_sim/firmware.hpp): the kernel file it loads, what it writes into
// simulated RAM and protects there, and the three loader models booting the core.

#include "test_support.hpp"

#include <run.hpp>
#include <scenario.hpp>

#include <hal/firmware/loader_tables.hpp>
#include <hal/hal.hpp>
#include <hal/mmu.hpp>
#include <hal_sim/firmware.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/ustar_writer.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

using hal_sim::Firmware;
using hal_sim::KernelFile;
using hal_sim::Machine;
using hal_sim::MachineConfig;
using hal_sim::Verdict;

constexpr uint64_t kVirt = bootboot_abi::kKernelVirt;

MachineConfig q35(Firmware firmware, uint32_t cpus = 2) {
    MachineConfig c;
    c.cpus = cpus;
    c.firmware = firmware;
    c.memory = duet::test::fixture("qemu-q35-2g");
    return c;
}

template <typename T>
void poke(std::vector<uint8_t>& b, size_t at, T v) {
    std::memcpy(b.data() + at, &v, sizeof v);
}

std::string refusal(const std::vector<uint8_t>& elf) {
    try {
        (void)hal_sim::read_kernel_file(elf);
    } catch (const hal_sim::ConfigError& e) {
        return e.what();
    }
    return "";
}

TEST(Firmware, TheStandInKernelHasDuetsShape) {
    KernelFile k = hal_sim::read_kernel_file(hal_sim::model_kernel_file());
    EXPECT_EQ(k.segment.file_size, (48u + 8 + 8) << 10);
    EXPECT_EQ(k.segment.mem_size, (48u + 8 + 8 + 1152) << 10);
    EXPECT_FALSE(k.segment.shared_object);
    EXPECT_EQ(k.entry, kVirt);
    EXPECT_EQ(k.text_start, kVirt);
    EXPECT_EQ(k.text_end, kVirt + (48 << 10));
    EXPECT_EQ(k.rodata_start, k.text_end);
    EXPECT_EQ(k.rodata_end, k.rodata_start + (8 << 10));
    EXPECT_EQ(k.data_start, k.rodata_end);
    EXPECT_EQ(k.data_end, k.data_start + ((8 + 1152) << 10));
}

TEST(Firmware, RefusesKernelsALevelOneLoaderCannotLoad) {
    const std::vector<uint8_t> good = hal_sim::model_kernel_file();
    EXPECT_EQ(refusal(good), "");
    EXPECT_EQ(refusal({}), "not an ELF file");

    std::vector<uint8_t> arm = good;
    poke<uint16_t>(arm, 18, 183); // EM_AARCH64
    EXPECT_EQ(refusal(arm), "not a little-endian ELF64 file for x86_64");

    std::vector<uint8_t> low = good;
    poke<uint64_t>(low, 64 + 16, 0x100000); // the segment's p_vaddr, in the lower half
    EXPECT_NE(refusal(low).find("no loadable segment in the higher half"), std::string::npos);

    std::vector<uint8_t> moved = good;
    poke<uint64_t>(moved, 64 + 16, 0xFFFF'FFFF'C000'0000);
    EXPECT_NE(refusal(moved).find("linked at 0xffffffffc0000000"), std::string::npos);

    std::vector<uint8_t> truncated(good.begin(), good.begin() + 0x2000);
    EXPECT_NE(refusal(truncated).find("outside the file"), std::string::npos);

    std::vector<uint8_t> no_sections = good;
    poke<uint16_t>(no_sections, 60, 0); // e_shnum
    EXPECT_NE(refusal(no_sections).find("no readable section headers"), std::string::npos);
}

TEST(Firmware, TheInitrdAndTheKernelCopyAreWhereTheHandoverSays) {
    MachineConfig c = q35(Firmware::BootbootBios);
    std::vector<uint8_t> workload(100, 7);
    c.initrd = hal_sim::make_ustar(
        {{"sys/core", hal_sim::model_kernel_file()}, {"sys/workload", workload}});
    Machine m(c);
    const firmware::Handover& h = m.boot_state().handover;
    EXPECT_EQ(h.initrd, 0x100000u);
    EXPECT_EQ(h.initrd_size, firmware::page_round_up(c.initrd.size()));
    EXPECT_EQ(std::memcmp(m.ram().at(h.initrd), c.initrd.data(), c.initrd.size()), 0);
    EXPECT_EQ(h.kernel, h.initrd + h.initrd_size);
    EXPECT_EQ(h.kernel_size, 1216u << 10);
    const auto& header = m.boot_info().bootboot->header;
    EXPECT_EQ(header.initrd_ptr, h.initrd);
    EXPECT_EQ(header.initrd_size, h.initrd_size);
    EXPECT_EQ(header.fb_ptr, 0xfd000000u);
    EXPECT_EQ(header.fb_size, 1024u * 768 * 4);
}

TEST(Firmware, TheMachineBootsTheInitrdDuetInitrdWrites) {
    // What `duet initrd` writes for QEMU is what the simulated machine loads, byte for byte.
    duet::Scenario scenario =
        duet::load_scenario(std::string(DUET_SOURCE_DIR) + "/scenarios/baremetal.scn");
    duet::RunOptions options;
    options.kernel_file = hal_sim::model_kernel_file();
    options.kernel_file[0x1000] = 0x90; // a kernel of our own, with a non-zero byte
    std::vector<uint8_t> written = duet::scenario_initrd(scenario, options);
    Machine m(duet::machine_config(scenario, options));
    const firmware::Handover& h = m.boot_state().handover;
    ASSERT_EQ(h.initrd_size, firmware::page_round_up(written.size()));
    EXPECT_EQ(std::memcmp(m.ram().at(h.initrd), written.data(), written.size()), 0);
    // The segment's first byte, copied to where the loader puts the kernel.
    EXPECT_EQ(*static_cast<const uint8_t*>(m.ram().at(h.kernel)), 0x90);
}

TEST(Firmware, EachLoadersTablesMapWhatItsHandoverSays) {
    for (Firmware f : {Firmware::BootbootBios, Firmware::BootbootUefi, Firmware::Duet}) {
        Machine m(q35(f, 6));
        const firmware::Handover& h = m.boot_state().handover;
        auto read = [&m](uint64_t pa) {
            uint64_t e;
            std::memcpy(&e, m.ram().at(pa), sizeof e);
            return e;
        };
        const char* name = hal_sim::firmware_name(f);
        // As the CPUs get them: CR3 the loader's tables, CR0.WP clear.
        EXPECT_EQ(m.cpu(0).mmu.cr3, h.tables) << name;
        EXPECT_FALSE(m.cpu(1).mmu.wp) << name;
        EXPECT_EQ(firmware::loader_translate(h.tables, bootboot_abi::kBootbootVirt, read),
                  h.bootboot)
            << name;
        EXPECT_EQ(firmware::loader_translate(h.tables, bootboot_abi::kEnvironmentVirt + 5, read),
                  h.environment + 5)
            << name;
        EXPECT_EQ(firmware::loader_translate(h.tables, kVirt + 0x12345, read), h.kernel + 0x12345)
            << name;
        firmware::CoreStacks stacks = firmware::loader_core_stacks(h.tables, 6, read);
        EXPECT_EQ(stacks.first, h.stacks) << name;
        EXPECT_EQ(stacks.pages, 2u) << name;
        // The identity map the kernel reads the loader's pages through.
        EXPECT_EQ(firmware::loader_translate(h.tables, 0x7ffde123, read), 0x7ffde123u) << name;
    }
}

TEST(Firmware, TheCoreBootsUnderEachLoaderAndSetsWriteProtect) {
    for (Firmware f : {Firmware::BootbootBios, Firmware::BootbootUefi, Firmware::Duet}) {
        Machine m(q35(f, 3));
        auto r = m.run();
        const char* name = hal_sim::firmware_name(f);
        ASSERT_EQ(r.verdict, Verdict::Success) << name << ": " << r.detail;
        const std::string& com1 = m.com1().transcript();
        std::string protocol = f == Firmware::BootbootUefi ? "2" : "1";
        EXPECT_NE(com1.find("boot: bootboot protocol " + protocol + ", 3 cores"), std::string::npos)
            << com1;
        EXPECT_NE(com1.find("vm: W^X holds"), std::string::npos) << com1;
        for (uint32_t i = 0; i < 3; ++i) {
            EXPECT_TRUE(m.cpu(i).mmu.wp) << name << " cpu " << i;
        }
    }
}

TEST(Firmware, TheUefiModelAllocatesAtTheTopOfLowRam) {
    Machine m(q35(Firmware::BootbootUefi));
    const firmware::Handover& h = m.boot_state().handover;
    EXPECT_EQ(h.bootboot, 0x7ffdf000u - 4096);
    EXPECT_EQ(h.initrd + h.initrd_size, h.bootboot);
    EXPECT_TRUE(h.kernel_writable);
    const bootboot_abi::Info& info = *m.boot_info().bootboot;
    // Page 0 and low RAM are free under UEFI; the loader's pages are one hole below 0x7ffdf000.
    EXPECT_EQ(info.mmap[0].base(), 0u);
    EXPECT_EQ(info.mmap[0].type(), bootboot_abi::MmapType::Free);
    bool hole = false;
    for (size_t i = 0; i < info.mmap_count(); ++i) {
        hole |= info.mmap[i].base() + info.mmap[i].length() == h.tables;
    }
    EXPECT_TRUE(hole);
}

// A kernel that writes one byte where `target` says, then stops the machine.
uint64_t g_target;
void write_there(const core::BootInfo&) {
    *static_cast<volatile uint8_t*>(hal::phys_to_virt(hal::PhysAddr(g_target))) = 1;
    hal::halt_machine(hal::ExitCode::Success);
}
[[noreturn]] void idle() {
    for (;;) {
        hal::wait_for_interrupt();
    }
}
void ignore_ipi(hal::IpiKind) {}

hal_sim::RunResult write_to(Firmware f, uint64_t firmware::Handover::*where, uint64_t offset) {
    MachineConfig c = q35(f, 1);
    c.kernel = {&write_there, &idle, [] {}, &ignore_ipi};
    Machine m(c);
    g_target = m.boot_state().handover.*where + offset;
    return m.run();
}

TEST(Firmware, WritesToWhatTheLoaderMapsReadOnlyAreReportedNamingIt) {
    auto r = write_to(Firmware::BootbootBios, &firmware::Handover::bootboot, 0x10);
    EXPECT_EQ(r.verdict, Verdict::MemoryFault);
    EXPECT_NE(r.detail.find("wrote physical address 0x8010, which is the bootboot page, which the "
                            "bootboot-bios loader maps read-only"),
              std::string::npos)
        << r.detail;
    r = write_to(Firmware::BootbootBios, &firmware::Handover::environment, 0);
    EXPECT_NE(r.detail.find("the environment page"), std::string::npos) << r.detail;
    r = write_to(Firmware::BootbootBios, &firmware::Handover::tables, 0x800);
    EXPECT_NE(r.detail.find("the loader's page tables"), std::string::npos) << r.detail;
    r = write_to(Firmware::Duet, &firmware::Handover::kernel, 0x5000);
    EXPECT_NE(r.detail.find("the kernel copy, which the duet loader maps read-only"),
              std::string::npos)
        << r.detail;
    // The UEFI loader maps the kernel writable; the stacks are writable under every loader.
    EXPECT_EQ(write_to(Firmware::BootbootUefi, &firmware::Handover::kernel, 0x5000).verdict,
              Verdict::Success);
    EXPECT_EQ(write_to(Firmware::BootbootBios, &firmware::Handover::stacks, 0x3f8).verdict,
              Verdict::Success);
}

TEST(Firmware, MapsOnlyARealLoaderCouldBootAreRefused) {
    // What the BIOS loader cannot place is the model's refusal, naming the E820 entry.
    MachineConfig c = q35(Firmware::BootbootBios);
    c.memory = {{0x0, 0x10000, 1, 1}, {0x100000, 0x4000000, 1, 1}};
    try {
        Machine m(c);
        FAIL() << "expected a FirmwareError";
    } catch (const hal_sim::FirmwareError& e) {
        EXPECT_EQ(e.entry(), 0u);
        EXPECT_NE(std::string(e.what()).find("shorter than the 80 KiB"), std::string::npos);
    }
    // The UEFI loader takes none of low memory: the same map boots there.
    c.firmware = Firmware::BootbootUefi;
    EXPECT_EQ(Machine(c).run().verdict, Verdict::Success);
}

} // namespace
