// The kernel address space on the boot path (steps 4 and 5 of ARCHITECTURE.md's boot): what the
// core builds from the simulated firmware's pages, that every CPU loads it, the guard-paged
// kernel stacks, and how the loader's allocations join into the direct map.

#include "vm_support.hpp"

#include <core/mm/kernel_space.hpp>
#include <core/mm/layout.hpp>
#include <core/mm/page_table.hpp>
#include <hal/mmu.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/mmu.hpp>

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace core::mm {

// For EXPECT_EQ on vectors of them (found by argument-dependent lookup).
inline bool operator==(const RamRange& a, const RamRange& b) {
    return a.base == b.base && a.end == b.end;
}

} // namespace core::mm

namespace {

using core::mm::MemoryRegion;
using core::mm::MemoryType;
using core::mm::RamRange;
using hal::PhysAddr;
using hal_sim::AccessKind;
using hal_sim::Machine;
using hal_sim::MachineConfig;
using hal_sim::Privilege;
using hal_sim::Verdict;

constexpr uint64_t k4K = 4096;

MachineConfig q35(uint32_t cpus, const char* map = "qemu-q35-2g") {
    MachineConfig c;
    c.cpus = cpus;
    c.memory = duet::test::fixture(map);
    return c;
}

hal_sim::WalkResult walk(Machine& m, uint64_t va, AccessKind kind) {
    return duet::test::walk(m, core::mm::kernel_space().space().pml4().value(), va, kind);
}

TEST(BootVm, EveryCpuLoadsTheKernelAddressSpaceWithThePat) {
    Machine m(q35(4));
    ASSERT_EQ(m.run().verdict, Verdict::Success);
    ASSERT_TRUE(core::mm::kernel_space().ready());
    uint64_t pml4 = core::mm::kernel_space().space().pml4().value();
    for (uint32_t i = 0; i < 4; ++i) {
        EXPECT_EQ(m.cpu(i).mmu.cr3, pml4) << "cpu " << i;
        EXPECT_EQ(m.cpu(i).mmu.pat, core::mm::kPatValue) << "cpu " << i;
        EXPECT_GE(m.cpu(i).mmu.page_table_loads, 1u) << "cpu " << i;
    }
}

TEST(BootVm, TheImageAndTheBootbootPagesAreMappedAsTheFirmwareDescribesThem) {
    Machine m(q35(2));
    ASSERT_EQ(m.run().verdict, Verdict::Success);
    Machine::CpuScope scope(m, 0);
    hal::BootImage image = hal::boot_image();
    const firmware::Handover& plan = m.boot_state().handover;
    EXPECT_EQ(image.image, PhysAddr(plan.kernel));

    auto text = walk(m, image.text_start.value(), AccessKind::Execute);
    ASSERT_TRUE(text.ok());
    EXPECT_EQ(text.pa, plan.kernel);
    EXPECT_FALSE(text.writable);
    auto rodata = walk(m, image.rodata_start.value(), AccessKind::Read);
    ASSERT_TRUE(rodata.ok());
    EXPECT_EQ(rodata.pa, plan.kernel + (image.rodata_start.value() - image.text_start.value()));
    EXPECT_FALSE(rodata.writable);
    EXPECT_FALSE(rodata.executable);
    auto data = walk(m, image.data_end.value() - k4K, AccessKind::Write);
    ASSERT_TRUE(data.ok());
    EXPECT_FALSE(data.executable);
    // Nothing past the image until the loader's core stacks.
    EXPECT_FALSE(walk(m, image.data_end.value(), AccessKind::Read).ok());

    auto bootboot = walk(m, core::mm::kBootbootPage.value(), AccessKind::Read);
    ASSERT_TRUE(bootboot.ok());
    EXPECT_EQ(bootboot.pa, plan.bootboot);
    EXPECT_FALSE(bootboot.writable);
    auto env = walk(m, core::mm::kEnvironmentPage.value(), AccessKind::Read);
    ASSERT_TRUE(env.ok());
    EXPECT_EQ(env.pa, plan.environment);
    EXPECT_FALSE(env.writable);
    // The loader's core stacks, where the APs load the kernel's tables.
    auto core_stack = walk(m, core::mm::boot_stack_page(0).value(), AccessKind::Write);
    ASSERT_TRUE(core_stack.ok());
    EXPECT_EQ(core_stack.pa, plan.stacks);
    EXPECT_EQ(core::mm::kernel_space().stats().wx_violations, 0u);
}

TEST(BootVm, TheDirectMapCoversRamAndTheBootAreaButNotTheHoles) {
    Machine m(q35(1));
    ASSERT_EQ(m.run().verdict, Verdict::Success);
    Machine::CpuScope scope(m, 0);
    const firmware::Handover& plan = m.boot_state().handover;
    auto at = [&](uint64_t pa, AccessKind kind = AccessKind::Read) {
        return walk(m, core::mm::kDirectMapBase.value() + pa, kind);
    };
    // What the loader took is left out of the BOOTBOOT map, but it is RAM: the kernel image,
    // the initrd, the BOOTBOOT pages and the core stacks are all reachable.
    for (uint64_t pa :
         {plan.kernel, plan.kernel + plan.kernel_size - k4K, plan.initrd,
          plan.initrd + plan.initrd_size - k4K, plan.bootboot, plan.environment, plan.stacks}) {
        auto w = at(pa, AccessKind::Write);
        ASSERT_TRUE(w.ok()) << std::hex << pa;
        EXPECT_EQ(w.pa, pa);
        EXPECT_FALSE(w.executable);
    }
    EXPECT_TRUE(at(0x7ffde000).ok());
    // The firmware's reserved areas and the PCI hole are not RAM.
    EXPECT_FALSE(at(0x7ffdf000).ok());
    EXPECT_FALSE(at(0x80000000).ok());
    EXPECT_FALSE(at(0xfee00000).ok());
}

TEST(BootVm, TheLocalApicWindowIsMappedUncached) {
    Machine m(q35(1));
    ASSERT_EQ(m.run().verdict, Verdict::Success);
    Machine::CpuScope scope(m, 0);
    hal_sim::MmuState mmu;
    mmu.cr3 = core::mm::kernel_space().space().pml4().value();
    mmu.pat = core::mm::kPatValue;
    int found = 0;
    for (const auto& r : hal_sim::mapped_ranges(m.ram(), mmu)) {
        if (r.pa == 0xfee00000) {
            ++found;
            EXPECT_GE(r.va, core::mm::kMmioBase.value());
            EXPECT_LT(r.va, core::mm::kMmioEnd.value());
            EXPECT_EQ(r.bytes, k4K);
            EXPECT_EQ(r.memory_type, hal_sim::MemoryType::Uncacheable);
        }
    }
    EXPECT_EQ(found, 1);
}

TEST(BootVm, EachCpuHasAKernelStackBelowAnUnmappedGuardPage) {
    Machine m(q35(4));
    ASSERT_EQ(m.run().verdict, Verdict::Success);
    Machine::CpuScope scope(m, 0);
    auto& ks = core::mm::kernel_space();
    // The four CPUs' stacks; the init thread's, which stopped the machine, is still mapped.
    EXPECT_EQ(ks.stats().stacks_in_use, 5u);
    uint64_t slot = ks.stack_bytes() + k4K;
    for (uint64_t i = 0; i < 5; ++i) {
        uint64_t guard = core::mm::kStacksBase.value() + i * slot;
        uint32_t which = 99;
        EXPECT_TRUE(ks.is_stack_guard(hal::VirtAddr(guard), &which));
        EXPECT_EQ(which, i);
        EXPECT_FALSE(walk(m, guard, AccessKind::Write).ok()) << "slot " << i;
        auto bottom = walk(m, guard + k4K, AccessKind::Write);
        ASSERT_TRUE(bottom.ok()) << "slot " << i;
        EXPECT_FALSE(bottom.executable);
        EXPECT_TRUE(walk(m, guard + slot - k4K, AccessKind::Write).ok()) << "slot " << i;
    }
}

TEST(BootVm, TheVmLinesDependOnTheMapAndNotOnTheCpuCount) {
    std::vector<std::string> first;
    for (uint32_t cpus : {1u, 3u, 8u}) {
        Machine m(q35(cpus, "qemu-q35-8g"));
        ASSERT_EQ(m.run().verdict, Verdict::Success);
        std::vector<std::string> vm;
        std::string line;
        for (char c : m.com1().transcript()) {
            if (c != '\n') {
                line += c;
                continue;
            }
            if (line.rfind("vm: ", 0) == 0) {
                vm.push_back(line);
            }
            line.clear();
        }
        ASSERT_EQ(vm.size(), 2u);
        if (first.empty()) {
            first = vm;
            // 8 GiB: six 1 GiB pages above 4 GiB.
            EXPECT_NE(vm[0].find(" in 6 1G, "), std::string::npos) << vm[0];
        }
        EXPECT_EQ(vm, first) << cpus << " cpus";
    }
}

TEST(BootVm, AKernelStackOverflowIsCaughtAndNamesTheThread) {
#ifdef DUET_SANITIZE
    GTEST_SKIP() << "AddressSanitizer reports the overflow itself, before the guard page";
#endif
    MachineConfig c = q35(2);
    c.environment = "duet.test=stack-overflow\n";
    Machine m(c);
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::StackOverflow) << r.detail;
    EXPECT_NE(r.detail.find("init ran into its guard page"), std::string::npos) << r.detail;
    EXPECT_NE(
        m.com1().transcript().find("init: overflowing the init thread's kernel stack on purpose"),
        std::string::npos);
}

TEST(BootVm, TheWatchdogNamesACpuThatStoppedTakingTicksAndStopsTheMachine) {
    // duet.test=lockup: init spins with interrupts off while a thread computes on the other
    // CPU; with a 20 ms watchdog, the report comes long before the simulator's own livelock
    // verdict (100 ms of spinning).
    MachineConfig c = q35(2);
    c.environment = "duet.watchdog=20ms\nduet.test=lockup\n";
    Machine m(c);
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::Panic) << r.detail;
    std::string com1 = m.com1().transcript();
    size_t spin = com1.find("init: spinning with interrupts off on cpu ");
    ASSERT_NE(spin, std::string::npos) << com1;
    std::string cpu = com1.substr(spin + 42, 1);
    EXPECT_NE(com1.find("watchdog: cpu " + cpu + " has neither taken a tick nor switched for "),
              std::string::npos)
        << com1;
    size_t state = com1.find("watchdog: cpu " + cpu + ": runs thread ");
    ASSERT_NE(state, std::string::npos) << com1;
    EXPECT_NE(com1.find(" 'init', 0 queued", state), std::string::npos) << com1;
    EXPECT_NE(com1.find("panic: watchdog: the machine is stuck"), std::string::npos) << com1;
}

TEST(BootVm, WithoutAWatchdogTheSameLockupIsOnlyTheSimulatorsLivelock) {
    MachineConfig c = q35(2);
    c.environment = "duet.watchdog=0ns\nduet.test=lockup\n";
    Machine m(c);
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::Livelock) << r.detail;
    EXPECT_EQ(m.com1().transcript().find("watchdog:"), std::string::npos);
}

// --- join_loader_ranges() ---

std::vector<RamRange> join(const std::vector<MemoryRegion>& regions, std::vector<RamRange> in) {
    size_t n = core::mm::join_loader_ranges(regions.data(), regions.size(), in.data(), in.size());
    in.resize(n);
    return in;
}

RamRange range(uint64_t base, uint64_t end) {
    return {PhysAddr(base), PhysAddr(end)};
}

TEST(JoinLoaderRanges, JoinsAllocationsInOneHoleIntoTheirSpan) {
    // Usable RAM around a hole [2 MiB, 20 MiB) that the loader took.
    std::vector<MemoryRegion> regions = {{0x100000, 0x200000, MemoryType::Usable},
                                         {0x1400000, 0x80000000, MemoryType::Usable}};
    auto out = join(regions, {range(0x13fe000, 0x1400000), range(0x200000, 0x310800),
                              range(0x13fc000, 0x13fd000), range(0x400000, 0x400000)});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], range(0x200000, 0x1400000));
}

TEST(JoinLoaderRanges, KeepsAllocationsApartWhereTheMapHasSomethingBetween) {
    std::vector<MemoryRegion> regions = {{0x0, 0x9fc00, MemoryType::Usable},
                                         {0x9fc00, 0xa0000, MemoryType::Reserved},
                                         {0xf0000, 0x100000, MemoryType::Reserved},
                                         {0x200000, 0x300000, MemoryType::Usable}};
    auto out = join(regions, {range(0x180000, 0x181000), range(0x8000, 0x9000),
                              range(0x100000, 0x101000), range(0x1ff000, 0x1fffff)});
    std::vector<RamRange> expected = {range(0x8000, 0x9000), range(0x100000, 0x200000)};
    EXPECT_EQ(out, expected);
}

TEST(JoinLoaderRanges, DropsEmptyRangesAndWidensToPages) {
    std::vector<MemoryRegion> regions = {{0x0, 0x100000, MemoryType::Usable}};
    auto out = join(regions, {range(0x200000, 0x200000), range(0x300010, 0x300020)});
    std::vector<RamRange> expected = {range(0x300000, 0x301000)};
    EXPECT_EQ(out, expected);
    EXPECT_TRUE(join(regions, {}).empty());
}

} // namespace
