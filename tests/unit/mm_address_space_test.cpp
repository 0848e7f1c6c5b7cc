// Address spaces as objects: created sharing the kernel half, switched to, destroyed with every
// frame they owned given back.

#include "vm_support.hpp"

#include <core/mm/address_space.hpp>
#include <core/mm/kernel_space.hpp>
#include <hal/mmu.hpp>
#include <hal/user.hpp>
#include <hal_sim/mmu.hpp>

#include <gtest/gtest.h>

#include <memory>

namespace {

using core::Error;
using core::mm::AddressSpace;
using core::mm::FrameOwner;
using core::mm::FrameSource;
using core::mm::KernelSpace;
using core::mm::PageFlags;
using core::mm::PageSize;
using duet::test::FramesOnMachine;
using duet::test::KernelSpaceInputs;
using duet::test::MiB;
using hal::PhysAddr;
using hal::VirtAddr;
using hal_sim::AccessKind;
using hal_sim::Privilege;

constexpr uint64_t k4K = 4096;

struct AddressSpaceTest : ::testing::Test {
    FramesOnMachine f{duet::test::fixture("qemu-q35-2g"), 1};
    std::unique_ptr<KernelSpace> ks = std::make_unique<KernelSpace>();

    void SetUp() override {
        f.init();
        KernelSpaceInputs in(f);
        ASSERT_TRUE(ks->build(in.desc, FrameSource(*f.frames)).ok());
    }

    AddressSpace create() {
        auto as = AddressSpace::create(FrameSource(*f.frames), ks->space());
        EXPECT_TRUE(as.ok());
        return as.ok() ? as.value() : AddressSpace();
    }

    hal_sim::WalkResult walk(const AddressSpace& as, uint64_t va, AccessKind kind,
                             Privilege privilege) {
        return duet::test::walk(*f.machine, as.pml4().value(), va, kind, privilege);
    }
};

TEST_F(AddressSpaceTest, SharesTheKernelHalfIncludingLaterMappings) {
    AddressSpace as = create();
    ASSERT_TRUE(as.valid());
    EXPECT_FALSE(as.is_kernel());
    VirtAddr text = core::mm::kKernelImageBase;
    auto mine = as.translate(text);
    auto kernel = ks->space().translate(text);
    ASSERT_TRUE(mine.ok() && kernel.ok());
    EXPECT_EQ(mine.value().address, kernel.value().address);

    // A kernel mapping made after the address space was created shows in it: the PDPT is
    // shared, not copied.
    auto stack = ks->alloc_stack();
    ASSERT_TRUE(stack.ok());
    auto w = walk(as, stack.value().bottom.value(), AccessKind::Write, Privilege::Supervisor);
    ASSERT_TRUE(w.ok()) << hal_sim::describe(w);
    EXPECT_EQ(w.pa, stack.value().frames.value());
    // ...and a user access to it faults.
    EXPECT_EQ(walk(as, stack.value().bottom.value(), AccessKind::Read, Privilege::User).error_code,
              hal_sim::pf::kPresent | hal_sim::pf::kUser);
    // An unmapping shows too (the freed stack is kept mapped until the kept ones are
    // released).
    ASSERT_TRUE(ks->free_stack(stack.value()).ok());
    ks->release_kept_stacks();
    EXPECT_EQ(
        walk(as, stack.value().bottom.value(), AccessKind::Read, Privilege::Supervisor).status,
        hal_sim::WalkStatus::PageFault);
    as.destroy();
}

TEST_F(AddressSpaceTest, TheUserHalfIsAllAUserAddressSpaceMayChange) {
    AddressSpace as = create();
    auto err = [&](VirtAddr va) {
        auto r = as.map(va, PhysAddr(0x10'0000), PageSize::Size4KiB, {.user = true});
        if (r.ok()) {
            r.value().ignore();
            return Error::NotFound;
        }
        return r.error();
    };
    EXPECT_EQ(err(VirtAddr(0)), Error::InvalidArgument); // null stays unmapped
    EXPECT_EQ(err(core::mm::kDirectMapBase), Error::InvalidArgument);
    EXPECT_EQ(err(core::mm::kKernelImageBase), Error::InvalidArgument);
    EXPECT_EQ(as.unmap(core::mm::kKernelImageBase).error(), Error::InvalidArgument);
    EXPECT_EQ(as.protect(core::mm::kKernelImageBase, {.writable = true}).error(),
              Error::InvalidArgument);
    EXPECT_EQ(err(VirtAddr(0x0000'7FFF'FFFF'F000)), Error::NotFound); // the last user page
    as.destroy();
}

TEST_F(AddressSpaceTest, UserPagesFollowTheHardwareRules) {
    AddressSpace as = create();
    VirtAddr code(0x40'0000), data(0x60'0000), ro(0x61'0000);
    as.map_new(code, {.executable = true, .user = true}).value().ignore();
    as.map_new(data, {.writable = true, .user = true}).value().ignore();
    as.map_new(ro, {.user = true}).value().ignore();
    EXPECT_TRUE(walk(as, code.value(), AccessKind::Execute, Privilege::User).ok());
    EXPECT_TRUE(walk(as, data.value(), AccessKind::Write, Privilege::User).ok());
    EXPECT_EQ(walk(as, ro.value(), AccessKind::Write, Privilege::User).error_code,
              hal_sim::pf::kPresent | hal_sim::pf::kWrite | hal_sim::pf::kUser);
    EXPECT_EQ(walk(as, data.value(), AccessKind::Execute, Privilege::User).error_code,
              hal_sim::pf::kPresent | hal_sim::pf::kUser | hal_sim::pf::kInstruction);
    EXPECT_EQ(walk(as, code.value(), AccessKind::Write, Privilege::User).error_code,
              hal_sim::pf::kPresent | hal_sim::pf::kWrite | hal_sim::pf::kUser);
    EXPECT_EQ(walk(as, 0x70'0000, AccessKind::Read, Privilege::User).error_code,
              hal_sim::pf::kUser);
    // The kernel may read user pages (no SMAP yet) but not write read-only ones (CR0.WP).
    EXPECT_TRUE(walk(as, ro.value(), AccessKind::Read, Privilege::Supervisor).ok());
    EXPECT_EQ(walk(as, ro.value(), AccessKind::Write, Privilege::Supervisor).error_code,
              hal_sim::pf::kPresent | hal_sim::pf::kWrite);
    // Fresh pages are zeroed.
    auto t = as.translate(data);
    ASSERT_TRUE(t.ok());
    auto* p = static_cast<const uint8_t*>(hal::phys_to_virt(t.value().frame));
    for (uint64_t i = 0; i < k4K; ++i) {
        ASSERT_EQ(p[i], 0);
    }
    as.destroy();
}

TEST_F(AddressSpaceTest, ActivateLoadsCr3) {
    AddressSpace as = create();
    auto& mmu = f.machine->current_cpu().mmu;
    uint64_t loads = mmu.page_table_loads;
    as.activate();
    EXPECT_EQ(mmu.cr3, as.pml4().value());
    EXPECT_EQ(mmu.page_table_loads, loads + 1);
    ks->activate();
    EXPECT_EQ(mmu.cr3, ks->space().pml4().value());
    as.destroy();
}

TEST_F(AddressSpaceTest, DestroyReturnsEveryFrameItOwned) {
    auto before = f.frames->stats();
    AddressSpace as = create();
    // Owned 4 KiB pages all over the user half, an owned 2 MiB page, and a borrowed frame.
    for (uint64_t i = 0; i < 1000; ++i) {
        VirtAddr va((i % 7 + 1) * 0x10'0000'0000 + (i * 0x2'3000) % 0x4000'0000);
        auto r = as.map_new(va.align_down(k4K), {.writable = true, .user = true});
        if (r.ok()) {
            r.value().ignore();
        } else {
            EXPECT_EQ(r.error(), Error::Busy);
        }
    }
    core::mm::FrameRequest big;
    big.order = 9;
    big.owner = FrameOwner::User;
    PhysAddr block = f.frames->alloc(big).value();
    as.map(VirtAddr(0x7000'0000'0000), block, PageSize::Size2MiB,
           {.writable = true, .user = true, .owned = true})
        .value()
        .ignore();
    PhysAddr borrowed = f.frames->alloc_frame(FrameOwner::Kernel).value();
    as.map(VirtAddr(0x1000), borrowed, PageSize::Size4KiB, {.user = true}).value().ignore();
    EXPECT_GT(duet::test::frames_used_by(*f.frames, FrameOwner::User), 1000u);

    // One page unmapped and freed by hand on the way.
    uint64_t user = duet::test::frames_used_by(*f.frames, FrameOwner::User);
    uint64_t flushes = f.machine->current_cpu().mmu.page_flushes;
    ASSERT_TRUE(as.unmap_and_free(VirtAddr(0x10'0000'0000)).ok());
    EXPECT_EQ(duet::test::frames_used_by(*f.frames, FrameOwner::User), user - 1);
    EXPECT_EQ(f.machine->current_cpu().mmu.page_flushes, flushes + 1);

    as.destroy();
    EXPECT_FALSE(as.valid());
    ASSERT_TRUE(f.frames->free(borrowed).ok()); // borrowed: still ours to free
    auto after = f.frames->stats();
    EXPECT_EQ(after.free, before.free);
    for (size_t o = 0; o < core::mm::kFrameOwnerCount; ++o) {
        EXPECT_EQ(after.used_by[o], before.used_by[o])
            << core::mm::frame_owner_name(static_cast<FrameOwner>(o));
    }
    // The kernel half is untouched.
    EXPECT_TRUE(ks->space().translate(core::mm::kKernelImageBase).ok());
}

TEST(AddressSpace, CreateNeedsTheKernelsAddressSpace) {
    FramesOnMachine f(duet::test::fixture("qemu-q35-2g"), 1);
    f.init();
    AddressSpace none;
    EXPECT_EQ(AddressSpace::create(FrameSource(*f.frames), none).error(), Error::InvalidArgument);
    auto k = AddressSpace::create_kernel(FrameSource(*f.frames));
    ASSERT_TRUE(k.ok());
    auto user = AddressSpace::create(FrameSource(*f.frames), k.value()).value();
    EXPECT_EQ(AddressSpace::create(FrameSource(*f.frames), user).error(), Error::InvalidArgument);
    user.destroy();
    k.value().destroy();
    EXPECT_EQ(duet::test::page_table_frames(*f.frames), 0u);
    (void)MiB;
}

} // namespace

namespace {

// hal::copy_from_user and copy_to_user (hal/sim/user.cpp) on the address space loaded on the
// calling CPU: the user's rights page by page, never a fault, false for anything not allowed.
TEST_F(AddressSpaceTest, UserCopiesFollowTheUsersRightsAndNeverFault) {
    AddressSpace as = create();
    VirtAddr data(0x60'0000), ro(0x61'0000);
    as.map_new(data, {.writable = true, .user = true}).value().ignore();
    as.map_new(VirtAddr(data.value() + k4K), {.writable = true, .user = true}).value().ignore();
    as.map_new(ro, {.user = true}).value().ignore();
    as.activate();

    // Across a page boundary, both ways.
    const char text[] = "across two pages";
    VirtAddr edge(data.value() + k4K - 5);
    ASSERT_TRUE(hal::copy_to_user(edge, text, sizeof text));
    char back[sizeof text] = {};
    ASSERT_TRUE(hal::copy_from_user(back, edge, sizeof back));
    EXPECT_STREQ(back, text);
    EXPECT_TRUE(hal::copy_from_user(back, VirtAddr(0), 0)); // nothing to copy

    // Read-only: readable, not writable (the user's rule, whatever CR0.WP says).
    EXPECT_TRUE(hal::copy_from_user(back, ro, sizeof back));
    EXPECT_FALSE(hal::copy_to_user(ro, text, sizeof text));
    // Unmapped, half mapped, kernel, non-canonical, wrapping.
    EXPECT_FALSE(hal::copy_from_user(back, VirtAddr(0x70'0000), 1));
    EXPECT_FALSE(hal::copy_from_user(back, VirtAddr(data.value() + 2 * k4K - 4), 8));
    EXPECT_FALSE(hal::copy_from_user(back, core::mm::kKernelImageBase, 8));
    EXPECT_FALSE(hal::copy_to_user(core::mm::kDirectMapBase, text, 8));
    EXPECT_FALSE(hal::copy_from_user(back, VirtAddr(0x0000'8000'0000'0000), 8));
    EXPECT_FALSE(hal::copy_from_user(back, VirtAddr(~uint64_t{0} - 3), 8));
    EXPECT_EQ(hal_sim::this_mmu().page_faults, 0u); // refused by the walk, not delivered

    ks->activate();
    as.destroy();
}

} // namespace
