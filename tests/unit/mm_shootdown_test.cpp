// TLB shootdown (core/mm/shootdown.cpp) on a simulated machine of four CPUs, each with the TLB
// the simulator models for user translations: CPU 0 unmaps a page of a user address space and
// shoots it down; by the time tlb_shootdown() returns, every other CPU that had the space
// loaded has dropped its cached translation, and the others got no IPI at all.

#include "vm_support.hpp"

#include <core/boot/boot.hpp>
#include <core/cpu.hpp>
#include <core/irq_entry.hpp>
#include <core/mm/kernel_space.hpp>
#include <core/mm/physical_memory.hpp>
#include <core/mm/shootdown.hpp>
#include <hal/hal.hpp>
#include <hal/user.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/mmu.hpp>

#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <string>

namespace {

using core::mm::AddressSpace;
using core::mm::FrameSource;
using duet::test::KernelSpaceInputs;
using hal::PhysAddr;
using hal::VirtAddr;

constexpr uint32_t kCpus = 4;
constexpr uint64_t kPage = 0x40'0000;
constexpr uint64_t kIrqOffNs = 50'000;

// What each CPU has loaded: the space being shot down, another user space, or the kernel's.
enum class Loads { Space, OtherSpace, Kernel };

struct Shape {
    std::array<Loads, kCpus> loads{Loads::Space, Loads::Space, Loads::OtherSpace, Loads::Kernel};
    bool irq_off_while_ready = false; // CPU 1 keeps interrupts off for kIrqOffNs once ready
    bool cpu1_shoots_too = false;     // CPU 1 shoots the same space down at the same time
};

// What the run saw. Reset by each test.
struct Seen {
    Shape setup;
    AddressSpace space, other;
    uint32_t ready = 0; // CPUs that loaded their space and cached the page
    bool go = false;    // CPU 1: shoot down now
    uint32_t done = 0;  // shootdowns returned
    std::array<uint64_t, kCpus> flush_ipis{};
    std::array<size_t, kCpus> tlb_at_return{};       // each CPU's TLB entries when CPU 0's returned
    std::array<uint64_t, kCpus> flushes_at_return{}; // and its full flushes
    size_t cpu0_tlb_cpu1_return = 0;                 // CPU 0's entries when CPU 1's returned
    uint64_t returned_ns = 0;
    uint64_t irq_on_ns = 0; // when CPU 1 turned interrupts on
    core::mm::ShootdownStats stats;
};
Seen g;
std::unique_ptr<KernelSpaceInputs> s_inputs;

template <typename T>
T load(const T* p) {
    return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
template <typename T>
void add(T* p) {
    __atomic_fetch_add(p, T{1}, __ATOMIC_ACQ_REL);
}

void count_ipi(hal::IpiKind kind) {
    if (kind == hal::IpiKind::FlushTlb) {
        ++g.flush_ipis[hal::cpu_index()];
    }
    core::on_ipi(kind);
}

// Loads this CPU's space as the switch path does, and caches the page's translation.
void load_and_touch() {
    core::Cpu& me = core::cpu(hal::cpu_index());
    core::mm::kernel_space().activate();
    Loads what = g.setup.loads[hal::cpu_index()];
    if (what != Loads::Kernel) {
        const AddressSpace& s = what == Loads::Space ? g.space : g.other;
        PhysAddr pml4 = s.pml4();
        __atomic_store(&me.user_pml4, &pml4, __ATOMIC_SEQ_CST);
        hal::load_page_table(s.pml4());
        uint64_t value = 0;
        EXPECT_TRUE(hal::copy_from_user(&value, VirtAddr(kPage), sizeof value));
        EXPECT_EQ(value, what == Loads::Space ? 0x5555u : 0u);
    }
    add(&g.ready);
}

void install_cpu(uint32_t index) {
    core::cpu(index).index = index;
    hal::set_this_cpu(&core::cpu(index));
}

[[noreturn]] void other_cpu() {
    install_cpu(hal::cpu_index());
    load_and_touch();
    if (hal::cpu_index() == 1 && g.setup.irq_off_while_ready) {
        hal::cpu_work(kIrqOffNs); // interrupts are still off: the IPI waits
        g.irq_on_ns = hal::now_ns();
    }
    hal::irq_restore(1);
    if (hal::cpu_index() == 1 && g.setup.cpu1_shoots_too) {
        while (!load(&g.go)) {
            hal::cpu_relax();
        }
        core::mm::tlb_shootdown(g.space.pml4());
        g.cpu0_tlb_cpu1_return = hal_sim::Machine::current()->cpu(0).mmu.tlb.size();
        add(&g.done);
    }
    for (;;) {
        hal::wait_for_interrupt();
    }
}

[[noreturn]] void shooting_kernel(const core::BootInfo& info) {
    install_cpu(0);
    core::mm::init_physical_memory(*info.bootboot);
    hal_sim::Machine& m = *hal_sim::Machine::current();
    s_inputs = std::make_unique<KernelSpaceInputs>(m, duet::test::boot_regions(m));
    auto& ks = core::mm::kernel_space();
    MUST(ks.build(s_inputs->desc, FrameSource(core::mm::frames())));
    FrameSource frames(core::mm::frames());
    g.space = MUST(AddressSpace::create(frames, ks.space()));
    g.other = MUST(AddressSpace::create(frames, ks.space()));
    for (AddressSpace* s : {&g.space, &g.other}) {
        MUST(s->map_new(VirtAddr(kPage), {.writable = true, .user = true})).ignore();
    }
    *static_cast<uint64_t*>(hal::phys_to_virt(MUST(g.space.translate(VirtAddr(kPage))).frame)) =
        0x5555;
    hal::release_secondary_cpus();
    load_and_touch();
    hal::irq_restore(1);
    while (load(&g.ready) != kCpus) {
        hal::cpu_relax();
    }

    // The change: the page leaves the tables. The caller flushes its own TLB afterwards.
    core::mm::Unmapped u = MUST(g.space.unmap(VirtAddr(kPage)));
    __atomic_store_n(&g.go, true, __ATOMIC_RELEASE);
    core::mm::tlb_shootdown(g.space.pml4());
    g.returned_ns = hal::now_ns();
    for (uint32_t i = 0; i < kCpus; ++i) {
        g.tlb_at_return[i] = m.cpu(i).mmu.tlb.size();
        g.flushes_at_return[i] = m.cpu(i).mmu.full_flushes;
    }
    u.flush.flush();
    add(&g.done);
    while (load(&g.done) != (g.setup.cpu1_shoots_too ? 2u : 1u)) {
        hal::cpu_relax();
    }
    // Stray IPIs (a duplicate, a late one) have time to arrive.
    hal::cpu_work(5'000'000);
    g.stats = core::mm::shootdown_stats();
    hal::halt_machine(hal::ExitCode::Success);
}

hal_sim::RunResult run(const Shape& setup, hal_sim::FaultRates faults = {}) {
    g = Seen{};
    g.setup = setup;
    hal_sim::MachineConfig config;
    config.cpus = kCpus;
    config.memory = duet::test::fixture("qemu-q35-2g");
    config.kernel = {&shooting_kernel, &other_cpu, [] {}, &count_ipi};
    config.faults = faults;
    hal_sim::Machine m(config);
    hal_sim::RunResult r = m.run();
    s_inputs.reset();
    return r;
}

TEST(TlbShootdown, FlushesEveryOtherCpuWithTheSpaceLoadedBeforeItReturns) {
    auto r = run(Shape{});
    ASSERT_EQ(r.verdict, hal_sim::Verdict::Success) << r.detail;
    // CPU 1 had it loaded: interrupted, flushed, its entry gone by the time the call returned.
    EXPECT_EQ(g.flush_ipis[1], 1u);
    EXPECT_EQ(g.flushes_at_return[1], 1u);
    EXPECT_EQ(g.tlb_at_return[1], 0u);
    // CPU 0 is the caller, CPU 2 has another space, CPU 3 the kernel's: no IPI.
    EXPECT_EQ(g.flush_ipis[0], 0u);
    EXPECT_EQ(g.tlb_at_return[0], 1u) << "the caller flushes its own TLB";
    EXPECT_EQ(g.flush_ipis[2], 0u);
    EXPECT_EQ(g.flush_ipis[3], 0u);
    EXPECT_EQ(g.tlb_at_return[2], 1u) << "another space's translation stays";
    EXPECT_EQ(g.stats.shootdowns, 1u);
    EXPECT_EQ(g.stats.ipis, 1u);
    EXPECT_EQ(g.stats.flushes, 1u);
}

TEST(TlbShootdown, NoOtherCpuWithTheSpaceMeansNoIpi) {
    Shape s;
    s.loads = {Loads::Space, Loads::OtherSpace, Loads::Kernel, Loads::Kernel};
    auto r = run(s);
    ASSERT_EQ(r.verdict, hal_sim::Verdict::Success) << r.detail;
    EXPECT_EQ(g.stats.shootdowns, 1u);
    EXPECT_EQ(g.stats.ipis, 0u);
    for (uint64_t n : g.flush_ipis) {
        EXPECT_EQ(n, 0u);
    }
}

TEST(TlbShootdown, WaitsForACpuWithInterruptsOff) {
    Shape s;
    s.irq_off_while_ready = true;
    auto r = run(s);
    ASSERT_EQ(r.verdict, hal_sim::Verdict::Success) << r.detail;
    EXPECT_EQ(g.tlb_at_return[1], 0u);
    EXPECT_GE(g.irq_on_ns, kIrqOffNs);
    // NOTE: CPUs' clocks agree to within a step: CPU 0 may see the acknowledgement at the
    // very time CPU 1 turned interrupts on.
    EXPECT_GE(g.returned_ns, g.irq_on_ns) << "returned before CPU 1 could take the IPI";
}

TEST(TlbShootdown, TwoCpusShootingEachOtherDownAtOnce) {
    Shape s;
    s.loads = {Loads::Space, Loads::Space, Loads::Space, Loads::Kernel};
    s.cpu1_shoots_too = true;
    auto r = run(s);
    ASSERT_EQ(r.verdict, hal_sim::Verdict::Success) << r.detail;
    EXPECT_EQ(g.tlb_at_return[1], 0u);
    EXPECT_EQ(g.tlb_at_return[2], 0u);
    EXPECT_EQ(g.cpu0_tlb_cpu1_return, 0u);
    EXPECT_EQ(g.stats.shootdowns, 2u);
    EXPECT_EQ(g.stats.ipis, 4u); // 0 -> 1, 2 and 1 -> 0, 2
}

TEST(TlbShootdown, LateAndDuplicatedIpisAreHarmless) {
    hal_sim::FaultRates faults;
    faults.ipi_delay = 1;
    faults.ipi_duplicate = 1;
    Shape s;
    s.loads = {Loads::Space, Loads::Space, Loads::Space, Loads::Kernel};
    s.cpu1_shoots_too = true;
    auto r = run(s, faults);
    ASSERT_EQ(r.verdict, hal_sim::Verdict::Success) << r.detail;
    EXPECT_EQ(g.tlb_at_return[1], 0u);
    EXPECT_EQ(g.tlb_at_return[2], 0u);
    EXPECT_EQ(g.cpu0_tlb_cpu1_return, 0u);
    EXPECT_EQ(g.stats.ipis, 4u);
    EXPECT_EQ(g.stats.flushes, 8u) << "each IPI delivered twice";
}

} // namespace
