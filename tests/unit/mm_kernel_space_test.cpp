// The kernel address space, built from a description of the simulated machine and walked with
// the simulated MMU: the direct map in large pages, W^X on the kernel image, the BOOTBOOT
// pages, the framebuffer, guard-paged kernel stacks, device windows.

#include "vm_support.hpp"

#include <core/mm/kernel_space.hpp>
#include <core/mm/layout.hpp>
#include <hal/mmu.hpp>
#include <hal_sim/mmu.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <random>
#include <set>
#include <string_view>
#include <vector>

namespace {

using core::Error;
using core::mm::FrameOwner;
using core::mm::FrameSource;
using core::mm::KernelSpace;
using core::mm::KernelStack;
using duet::test::FramesOnMachine;
using duet::test::GiB;
using duet::test::KernelSpaceInputs;
using duet::test::MiB;
using hal::PhysAddr;
using hal::VirtAddr;
using hal_sim::AccessKind;
using hal_sim::Privilege;
using hal_sim::WalkStatus;

constexpr uint64_t k4K = 4096;

struct KernelSpaceTest : ::testing::Test {
    FramesOnMachine f{duet::test::fixture("qemu-q35-2g"), 2};
    std::unique_ptr<KernelSpace> ks = std::make_unique<KernelSpace>();
    uint64_t tables_before = 0;

    void SetUp() override {
        f.init();
        tables_before = duet::test::page_table_frames(*f.frames);
    }

    void build(const KernelSpaceInputs& in) {
        auto r = ks->build(in.desc, FrameSource(*f.frames));
        ASSERT_TRUE(r.ok()) << core::describe(r.error());
    }

    hal_sim::WalkResult walk(uint64_t va, AccessKind kind,
                             Privilege privilege = Privilege::Supervisor) {
        return duet::test::walk(*f.machine, ks->space().pml4().value(), va, kind, privilege);
    }
};

TEST(KernelSpaceDirectMap, CoversAllRamInLargePages) {
    // 8 GiB: 2 GiB below the PCI hole, 6 GiB from 4 GiB up.
    FramesOnMachine g(duet::test::fixture("qemu-q35-8g"), 1);
    g.init();
    auto ks = std::make_unique<KernelSpace>();
    KernelSpaceInputs in(g);
    auto built = ks->build(in.desc, FrameSource(*g.frames));
    ASSERT_TRUE(built.ok()) << core::describe(built.error());
    auto walk = [&](uint64_t va, AccessKind kind, Privilege p = Privilege::Supervisor) {
        return duet::test::walk(*g.machine, ks->space().pml4().value(), va, kind, p);
    };
    auto s = ks->stats();
    uint64_t ram = 0;
    for (const auto& r : in.ram) {
        ram += r.end.value() - r.base.value();
    }
    EXPECT_EQ(s.direct_map_bytes, ram);
    EXPECT_GT(ram, 8 * GiB - 256 * MiB);
    // 1 GiB pages for the high RAM and the low GiB's aligned part, 2 MiB pages for the rest;
    // 4 KiB pages only at unaligned edges (and for the image, the BOOTBOOT pages and the core
    // stacks).
    EXPECT_EQ(s.pages[2], 6u);
    EXPECT_GT(s.pages[1], 400u);
    EXPECT_LT(s.pages[0], 2000u);
    EXPECT_EQ(s.wx_violations, 0u);

    // Every RAM byte is where the direct map says, read-write, no-execute, kernel-only.
    std::mt19937_64 rng(7);
    for (const auto& r : in.ram) {
        for (int i = 0; i < 200; ++i) {
            uint64_t pa = r.base.value() + rng() % (r.end.value() - r.base.value());
            auto w = walk(core::mm::direct_map(PhysAddr(pa)).value(), AccessKind::Write);
            ASSERT_TRUE(w.ok()) << hal_sim::describe(w);
            EXPECT_EQ(w.pa, pa);
            EXPECT_EQ(w.memory_type, hal_sim::MemoryType::WriteBack);
            EXPECT_FALSE(w.executable);
            EXPECT_EQ(
                walk(core::mm::direct_map(PhysAddr(pa)).value(), AccessKind::Read, Privilege::User)
                    .error_code,
                hal_sim::pf::kPresent | hal_sim::pf::kUser);
        }
    }
    // The PCI hole is not RAM and is not mapped.
    auto hole = walk(core::mm::direct_map(PhysAddr(0xC000'0000)).value(), AccessKind::Read);
    EXPECT_EQ(hole.status, WalkStatus::PageFault);
    EXPECT_EQ(hole.error_code, 0u);
}

TEST_F(KernelSpaceTest, KernelImageIsWxBySection) {
    KernelSpaceInputs in(f);
    build(in);
    const auto& img = in.desc.image;
    auto phys = [&](VirtAddr va) {
        return img.phys_base.value() + (va.value() - img.text_start.value());
    };

    // Text: read and execute, never write.
    for (VirtAddr va = img.text_start; va < img.text_end; va = va.offset(k4K)) {
        auto x = walk(va.value(), AccessKind::Execute);
        ASSERT_TRUE(x.ok()) << hal_sim::describe(x);
        EXPECT_EQ(x.pa, phys(va));
        EXPECT_TRUE(walk(va.value(), AccessKind::Read).ok());
        auto w = walk(va.value(), AccessKind::Write);
        ASSERT_EQ(w.status, WalkStatus::PageFault);
        EXPECT_EQ(w.error_code, hal_sim::pf::kPresent | hal_sim::pf::kWrite);
    }
    // Rodata: read only.
    for (VirtAddr va = img.rodata_start; va < img.rodata_end; va = va.offset(k4K)) {
        EXPECT_TRUE(walk(va.value(), AccessKind::Read).ok());
        EXPECT_EQ(walk(va.value(), AccessKind::Write).error_code,
                  hal_sim::pf::kPresent | hal_sim::pf::kWrite);
        EXPECT_EQ(walk(va.value(), AccessKind::Execute).error_code,
                  hal_sim::pf::kPresent | hal_sim::pf::kInstruction);
    }
    // Data and bss: read and write, never execute.
    for (VirtAddr va = img.data_start; va < img.data_end; va = va.offset(k4K)) {
        auto w = walk(va.value(), AccessKind::Write);
        ASSERT_TRUE(w.ok());
        EXPECT_EQ(w.pa, phys(va));
        EXPECT_EQ(walk(va.value(), AccessKind::Execute).error_code,
                  hal_sim::pf::kPresent | hal_sim::pf::kInstruction);
    }
    // Nothing past the image, and nothing anywhere both writable and executable.
    EXPECT_EQ(walk(img.data_end.value(), AccessKind::Read).status, WalkStatus::PageFault);
    hal_sim::MmuState mmu;
    mmu.cr3 = ks->space().pml4().value();
    for (const auto& r : hal_sim::mapped_ranges(f.machine->ram(), mmu)) {
        EXPECT_FALSE(r.writable && r.executable) << std::hex << r.va;
        EXPECT_FALSE(r.user) << std::hex << r.va;
    }
}

TEST_F(KernelSpaceTest, BootbootPagesFramebufferAndCoreStacks) {
    // A framebuffer somewhere in the PCI hole, as QEMU's would be.
    KernelSpaceInputs in(f, 0xC000'0000, 1024 * 768 * 4);
    build(in);
    const firmware::Handover& plan = f.machine->boot_state().handover;
    auto b = walk(core::mm::kBootbootPage.value(), AccessKind::Read);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(b.pa, plan.bootboot);
    EXPECT_EQ(walk(core::mm::kBootbootPage.value(), AccessKind::Write).status,
              WalkStatus::PageFault);
    auto e = walk(core::mm::kEnvironmentPage.value() + 17, AccessKind::Read);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e.pa, plan.environment + 17);

    auto fb = walk(core::mm::kFramebufferBase.value() + 0x2F'FFFC, AccessKind::Write);
    ASSERT_TRUE(fb.ok()) << hal_sim::describe(fb);
    EXPECT_EQ(fb.pa, 0xC000'0000u + 0x2F'FFFC);
    EXPECT_EQ(fb.memory_type, hal_sim::MemoryType::WriteCombining);
    EXPECT_FALSE(fb.executable);
    EXPECT_EQ(ks->framebuffer(), core::mm::kFramebufferBase);
    EXPECT_EQ(walk(core::mm::kFramebufferBase.value() + 1024 * 768 * 4, AccessKind::Read).status,
              WalkStatus::PageFault);

    // The loader's stack for core 0 ends at 2^64; core 1's starts 1 KiB lower.
    auto s0 = walk(0xFFFF'FFFF'FFFF'FFF8, AccessKind::Write);
    ASSERT_TRUE(s0.ok());
    EXPECT_EQ(s0.pa, plan.stacks + k4K - 8);
    EXPECT_FALSE(s0.executable);
}

TEST_F(KernelSpaceTest, StacksSitAboveUnmappedGuardPages) {
    KernelSpaceInputs in(f);
    in.desc.stack_pages = 4;
    build(in);
    uint64_t stack_frames_before = duet::test::frames_used_by(*f.frames, FrameOwner::KernelStacks);
    std::vector<KernelStack> stacks;
    for (int i = 0; i < 64; ++i) {
        auto s = ks->alloc_stack();
        ASSERT_TRUE(s.ok());
        stacks.push_back(s.value());
    }
    EXPECT_EQ(duet::test::frames_used_by(*f.frames, FrameOwner::KernelStacks),
              stack_frames_before + 64 * 4);
    std::set<uint64_t> tops;
    for (const auto& s : stacks) {
        tops.insert(s.top.value());
        EXPECT_EQ(s.top.value() - s.bottom.value(), 16 * 1024u);
        EXPECT_GE(s.bottom, core::mm::kStacksBase);
        EXPECT_LT(s.top, core::mm::kStacksEnd);
        // Mapped read-write, no-execute, on its own contiguous frames.
        for (uint64_t off = 0; off < 16 * 1024; off += k4K) {
            auto w = walk(s.bottom.value() + off, AccessKind::Write);
            ASSERT_TRUE(w.ok());
            EXPECT_EQ(w.pa, s.frames.value() + off);
            EXPECT_FALSE(w.executable);
        }
        // The page below (what an overflow runs into) and the page above are not mapped.
        auto guard = walk(s.bottom.value() - 8, AccessKind::Write);
        EXPECT_EQ(guard.status, WalkStatus::PageFault);
        EXPECT_EQ(guard.error_code, hal_sim::pf::kWrite);
        EXPECT_EQ(walk(s.top.value(), AccessKind::Read).status, WalkStatus::PageFault);
        uint32_t slot = 0;
        EXPECT_TRUE(ks->is_stack_guard(s.bottom.offset(-8ull), &slot));
        EXPECT_EQ(slot, s.slot);
        EXPECT_FALSE(ks->is_stack_guard(s.bottom));
        EXPECT_FALSE(ks->is_stack_guard(s.top.offset(-8ull)));
    }
    EXPECT_EQ(tops.size(), 64u);
    EXPECT_EQ(ks->stats().stacks_in_use, 64u);

    // Beyond the kept ones (two per CPU: four), freed stacks are unmapped (and flushed) and
    // their slots and frames reused.
    constexpr size_t kKept = 2 * KernelSpace::kKeptStacksPerCpu;
    for (size_t i = 0; i < kKept; ++i) {
        ASSERT_TRUE(ks->free_stack(stacks[20 + i]).ok());
    }
    uint64_t flushes = f.machine->current_cpu().mmu.flushes();
    KernelStack gone = stacks[10];
    // A stack whose frames are not the ones its slot maps (a corrupt thread) is refused, and
    // nothing is written into those frames.
    KernelStack wrong = gone;
    wrong.frames = stacks[11].frames;
    EXPECT_EQ(ks->free_stack(wrong).error(), Error::InvalidArgument);
    wrong.frames = gone.frames.offset(4096);
    EXPECT_EQ(ks->free_stack(wrong).error(), Error::InvalidArgument);
    EXPECT_EQ(ks->stats().stacks_in_use, 64u - kKept);
    ASSERT_TRUE(ks->free_stack(gone).ok());
    EXPECT_GT(f.machine->current_cpu().mmu.flushes(), flushes);
    EXPECT_EQ(walk(gone.bottom.value(), AccessKind::Read).status, WalkStatus::PageFault);
    EXPECT_EQ(ks->free_stack(gone).error(), Error::DoubleFree);
    ks->release_kept_stacks();
    auto again = ks->alloc_stack();
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again.value().slot, gone.slot);
    stacks[10] = again.value();
    for (size_t i = 0; i < stacks.size(); ++i) {
        if (i < 20 || i >= 20 + kKept) {
            ASSERT_TRUE(ks->free_stack(stacks[i]).ok());
        }
    }
    EXPECT_EQ(ks->stats().stacks_in_use, 0u);
    EXPECT_EQ(ks->stats().stacks_kept, kKept);
    EXPECT_EQ(duet::test::frames_used_by(*f.frames, FrameOwner::KernelStacks),
              stack_frames_before + kKept * 4);
    ks->release_kept_stacks();
    EXPECT_EQ(duet::test::frames_used_by(*f.frames, FrameOwner::KernelStacks), stack_frames_before);
    EXPECT_EQ(ks->stats().stacks_kept, 0u);
}

// Freed stacks are kept mapped, two per CPU, and handed out again, last freed first, without a
// mapping or a frame, but flushed on a CPU that takes one another CPU freed: it may cache the
// slot's earlier stack. A kept stack freed again, or written to, is caught.
TEST_F(KernelSpaceTest, FreedStacksAreKeptMappedAndHandedOutAgain) {
    KernelSpaceInputs in(f);
    in.desc.stack_pages = 4;
    build(in);
    uint64_t stack_frames_before = duet::test::frames_used_by(*f.frames, FrameOwner::KernelStacks);
    std::vector<KernelStack> stacks;
    for (int i = 0; i < 5; ++i) {
        stacks.push_back(ks->alloc_stack().value());
    }
    for (int i = 0; i < 4; ++i) {
        ASSERT_TRUE(ks->free_stack(stacks[i]).ok());
        EXPECT_EQ(ks->free_stack(stacks[i]).error(), Error::DoubleFree);
    }
    // Kept: still mapped to its frames, and still accounted as a stack's.
    auto w = walk(stacks[0].bottom.value() + 8, AccessKind::Write);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w.pa, stacks[0].frames.value() + 8);
    EXPECT_EQ(duet::test::frames_used_by(*f.frames, FrameOwner::KernelStacks),
              stack_frames_before + 5 * 4);
    EXPECT_EQ(ks->stats().stacks_kept, 4u);
    EXPECT_EQ(ks->stats().stacks_in_use, 1u);
    // The fifth is one too many for two CPUs: unmapped and its frames freed.
    ASSERT_TRUE(ks->free_stack(stacks[4]).ok());
    EXPECT_EQ(walk(stacks[4].bottom.value(), AccessKind::Read).status, WalkStatus::PageFault);
    EXPECT_EQ(duet::test::frames_used_by(*f.frames, FrameOwner::KernelStacks),
              stack_frames_before + 4 * 4);

    // Handed out last freed first, on any CPU, with no frame taken; flushed on a CPU other
    // than the one that freed it (CPU 0), which may cache the slot's earlier stack.
    uint64_t frames_free = f.frames->stats().free;
    for (int i = 3; i >= 2; --i) {
        auto cpu = static_cast<uint32_t>(i % 2);
        f.on_cpu(cpu, [&] {
            uint64_t flushes = f.machine->current_cpu().mmu.flushes();
            KernelStack again = ks->alloc_stack().value();
            EXPECT_EQ(again.slot, stacks[i].slot);
            EXPECT_EQ(again.frames, stacks[i].frames);
            EXPECT_EQ(again.bottom, stacks[i].bottom);
            EXPECT_EQ(again.top, stacks[i].top);
            EXPECT_EQ(f.machine->current_cpu().mmu.flushes(), flushes + (cpu == 0 ? 0 : 4));
            stacks[i] = again;
        });
    }
    EXPECT_EQ(f.frames->stats().free, frames_free);
    EXPECT_EQ(ks->stats().stacks_kept, 2u);
    EXPECT_EQ(ks->stats().stacks_in_use, 2u);

    // A CPU flushes a stack once while its slot stays mapped to those frames: CPU 0 mapped and
    // freed stacks[2] and stacks[3], CPU 1 took stacks[3] (and flushed it then); CPU 1 has
    // still to flush stacks[2], once.
    EXPECT_EQ(stacks[2].flushed_on, 0b01u);
    EXPECT_EQ(stacks[3].flushed_on, 0b11u);
    auto flushes_by = [&](uint32_t cpu, KernelStack& stack) {
        uint64_t n = 0;
        f.on_cpu(cpu, [&] {
            uint64_t before = f.machine->current_cpu().mmu.flushes();
            ks->flush_stack(stack);
            n = f.machine->current_cpu().mmu.flushes() - before;
        });
        return n;
    };
    EXPECT_EQ(flushes_by(0, stacks[3]), 0u);
    EXPECT_EQ(flushes_by(1, stacks[3]), 0u);
    EXPECT_EQ(flushes_by(1, stacks[2]), 4u);
    EXPECT_EQ(flushes_by(1, stacks[2]), 0u);
    EXPECT_EQ(stacks[2].flushed_on, 0b11u);

    // A write into a kept stack (here its first bytes, through the direct map) is caught when
    // the stack would be handed out again.
    auto* first = static_cast<uint64_t*>(hal::phys_to_virt(stacks[1].frames));
    first[2] ^= 1;
    f.machine->com1().set_sink([](std::string_view, std::string_view line) {
        std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    });
    EXPECT_DEATH((void)ks->alloc_stack(), "a kept stack was written to");
    first[2] ^= 1;
    ks->release_kept_stacks();
    for (int i = 2; i < 4; ++i) {
        ASSERT_TRUE(ks->free_stack(stacks[i]).ok());
    }
    ks->release_kept_stacks();
    EXPECT_EQ(duet::test::frames_used_by(*f.frames, FrameOwner::KernelStacks), stack_frames_before);

    // A slot mapped afresh starts over: flushed on the CPU that mapped it, and no other (CPU 1
    // may cache the slot's earlier stack).
    KernelStack fresh = ks->alloc_stack().value();
    EXPECT_EQ(fresh.slot, stacks[0].slot);
    EXPECT_EQ(fresh.flushed_on, 0b01u);
    EXPECT_EQ(flushes_by(1, fresh), 4u);
    ASSERT_TRUE(ks->free_stack(fresh).ok());
    ks->release_kept_stacks();
}

TEST_F(KernelSpaceTest, DevicesAreMappedUncachedInTheMmioWindow) {
    KernelSpaceInputs in(f);
    build(in);
    auto lapic = ks->map_device(PhysAddr(0xFEE0'0000), 0x400);
    ASSERT_TRUE(lapic.ok());
    EXPECT_EQ(lapic.value(), core::mm::kMmioBase);
    auto ioapic = ks->map_device(PhysAddr(0xFEC0'0010), 0x20);
    ASSERT_TRUE(ioapic.ok());
    EXPECT_EQ(ioapic.value(), core::mm::kMmioBase.offset(k4K + 0x10));
    auto w = walk(ioapic.value().value(), AccessKind::Write);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w.pa, 0xFEC0'0010u);
    EXPECT_EQ(w.memory_type, hal_sim::MemoryType::Uncacheable);
    EXPECT_EQ(ks->map_device(PhysAddr(0), 128 * MiB).error(), Error::OutOfMemory);
}

TEST_F(KernelSpaceTest, DescriptionsThatDoNotFitAreRefusedAndLeaveNothingBehind) {
    {
        KernelSpaceInputs in(f);
        in.desc.image.rodata_start = in.desc.image.rodata_start.offset(12); // unaligned
        EXPECT_EQ(ks->build(in.desc, FrameSource(*f.frames)).error(), Error::InvalidArgument);
    }
    {
        KernelSpaceInputs in(f);
        in.desc.image.data_end = VirtAddr(0xFFFF'FFFF'FFFF'0000); // into the core stacks
        EXPECT_EQ(ks->build(in.desc, FrameSource(*f.frames)).error(), Error::InvalidArgument);
    }
    {
        KernelSpaceInputs in(f, 0xC000'0000, 64 * MiB); // larger than the window
        EXPECT_EQ(ks->build(in.desc, FrameSource(*f.frames)).error(), Error::InvalidArgument);
    }
    {
        KernelSpaceInputs in(f);
        in.desc.stack_pages = 3;
        EXPECT_EQ(ks->build(in.desc, FrameSource(*f.frames)).error(), Error::InvalidArgument);
    }
    EXPECT_FALSE(ks->ready());
    EXPECT_EQ(duet::test::page_table_frames(*f.frames), tables_before);
}

// Only the kernel slots the kernel maps into have a table: the direct map's (as many as the RAM
// needs) and the top one. Every address space shares them; no other kernel slot can be mapped,
// so none is left out of an address space made before the mapping.
TEST_F(KernelSpaceTest, PinsTheKernelSlotsItMapsAndRefusesTheOthers) {
    KernelSpaceInputs in(f, 0xC000'0000, 4 * MiB);
    build(in);
    const auto* pml4 = static_cast<const uint64_t*>(hal::phys_to_virt(ks->space().pml4()));
    std::vector<size_t> pinned;
    for (size_t i = core::mm::kKernelHalfSlot; i < core::mm::kEntriesPerTable; ++i) {
        if ((pml4[i] & core::mm::pte::kPresent) != 0) {
            pinned.push_back(i);
        }
    }
    EXPECT_EQ(pinned, (std::vector<size_t>{256, 511})) << "2 GiB of RAM: one direct-map slot";
    // A stack made after a process's address space shows in it.
    core::mm::AddressSpace user =
        core::mm::AddressSpace::create(FrameSource(*f.frames), ks->space()).value();
    auto stack = ks->alloc_stack();
    ASSERT_TRUE(stack.ok());
    EXPECT_TRUE(user.translate(stack.value().bottom).ok());
    // Slot 257 (the direct map's second) and slot 400 have no table: mapping there is refused.
    for (uint64_t va : {0xFFFF'8080'0000'0000ull, 0xFFFF'C800'0000'0000ull}) {
        auto r = ks->space().mapper().map(VirtAddr(va), PhysAddr(0x10'0000),
                                          core::mm::PageSize::Size4KiB, {});
        ASSERT_FALSE(r.ok()) << std::hex << va;
        EXPECT_EQ(r.error(), Error::InvalidArgument) << std::hex << va;
    }
    MUST(ks->free_stack(stack.value()));
    user.destroy();
}

TEST_F(KernelSpaceTest, DestroyReturnsEveryFrame) {
    auto before = f.frames->stats();
    {
        KernelSpaceInputs in(f, 0xC000'0000, 4 * MiB);
        build(in);
    }
    auto s = ks->alloc_stack();
    ASSERT_TRUE(s.ok());
    // The PML4, the two pinned PDPTs and what lies under them.
    EXPECT_GE(duet::test::page_table_frames(*f.frames), tables_before + 3);
    EXPECT_EQ(ks->stats().table_frames, duet::test::page_table_frames(*f.frames) - tables_before);
    ks->destroy();
    auto after = f.frames->stats();
    EXPECT_EQ(after.free, before.free);
    EXPECT_EQ(after.used, before.used);
    EXPECT_TRUE(f.frames->accounting_holds());
}

TEST(KernelSpaceBoot, BuildsFromTheBumpAllocatorBeforeTheHandOver) {
    // The boot path's order: tables from the bump allocator while the loader's identity map is
    // all there is, then the frame allocator takes over and accounts them as page tables.
    FramesOnMachine g(duet::test::fixture("qemu-q35-2g"), 1);
    auto ks = std::make_unique<KernelSpace>();
    KernelSpaceInputs in(g);
    ASSERT_TRUE(ks->build(in.desc, FrameSource(*g.bump, *g.frames)).ok());
    uint64_t tables = ks->stats().table_frames;
    g.init();
    EXPECT_EQ(duet::test::page_table_frames(*g.frames), tables);
    // From now on the same source hands out and takes back frames of the frame allocator.
    auto s = ks->alloc_stack();
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(ks->free_stack(s.value()).ok());
    ks->destroy();
    EXPECT_EQ(duet::test::page_table_frames(*g.frames), 0u);
    EXPECT_TRUE(g.frames->accounting_holds());
}

} // namespace
