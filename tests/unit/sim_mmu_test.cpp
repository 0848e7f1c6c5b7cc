// The simulated MMU: the hardware's permission rules and error codes on the kernel's own
// tables, CR0.WP, EFER.NXE, SMEP/SMAP, reserved bits, accessed and dirty bits, and faults
// delivered to the core's handler in a running machine.

#include "vm_support.hpp"

#include <core/mm/kernel_space.hpp>
#include <core/mm/physical_memory.hpp>
#include <hal/mmu.hpp>
#include <hal/stop.hpp>
#include <hal/user.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/mmu.hpp>

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace {

using core::mm::AddressSpace;
using core::mm::FrameSource;
using core::mm::KernelSpace;
using core::mm::PageSize;
using duet::test::FramesOnMachine;
using duet::test::KernelSpaceInputs;
using hal::PhysAddr;
using hal::VirtAddr;
using hal_sim::AccessKind;
using hal_sim::MmuState;
using hal_sim::Privilege;
using hal_sim::WalkStatus;
namespace pf = hal_sim::pf;

struct SimMmuTest : ::testing::Test {
    FramesOnMachine f{duet::test::fixture("qemu-q35-2g"), 1};
    std::unique_ptr<KernelSpace> ks = std::make_unique<KernelSpace>();
    AddressSpace user;
    MmuState mmu;
    uint64_t text = 0, rodata = 0, data = 0, user_page = 0;

    void SetUp() override {
        f.init();
        KernelSpaceInputs in(f);
        ASSERT_TRUE(ks->build(in.desc, FrameSource(*f.frames)).ok());
        user = AddressSpace::create(FrameSource(*f.frames), ks->space()).value();
        user_page = 0x40'0000;
        user.map_new(VirtAddr(user_page), {.writable = true, .user = true}).value().ignore();
        text = in.desc.image.text_start.value();
        rodata = in.desc.image.rodata_start.value();
        data = in.desc.image.data_start.value();
        mmu.cr3 = user.pml4().value();
        mmu.pat = core::mm::kPatValue;
    }

    void TearDown() override { user.destroy(); }

    hal_sim::WalkResult walk(uint64_t va, AccessKind kind, Privilege p = Privilege::Supervisor) {
        return hal_sim::walk(f.machine->ram(), mmu, va, kind, p);
    }
    uint32_t fault(uint64_t va, AccessKind kind, Privilege p = Privilege::Supervisor) {
        auto r = walk(va, kind, p);
        EXPECT_EQ(r.status, WalkStatus::PageFault) << hal_sim::describe(r);
        return r.error_code;
    }
};

TEST_F(SimMmuTest, WritingKernelTextFaults) {
    EXPECT_TRUE(walk(text, AccessKind::Execute).ok());
    EXPECT_EQ(fault(text, AccessKind::Write), pf::kPresent | pf::kWrite);
    EXPECT_EQ(fault(rodata + 8, AccessKind::Write), pf::kPresent | pf::kWrite);
}

TEST_F(SimMmuTest, UserAccessToAKernelPageFaults) {
    EXPECT_EQ(fault(data, AccessKind::Read, Privilege::User), pf::kPresent | pf::kUser);
    EXPECT_EQ(fault(data, AccessKind::Write, Privilege::User),
              pf::kPresent | pf::kWrite | pf::kUser);
    EXPECT_EQ(fault(text, AccessKind::Execute, Privilege::User),
              pf::kPresent | pf::kUser | pf::kInstruction);
    EXPECT_EQ(
        fault(core::mm::kDirectMapBase.value() + 0x10'0000, AccessKind::Read, Privilege::User),
        pf::kPresent | pf::kUser);
    EXPECT_TRUE(walk(user_page, AccessKind::Write, Privilege::User).ok());
}

TEST_F(SimMmuTest, ExecutingDataFaults) {
    EXPECT_EQ(fault(data, AccessKind::Execute), pf::kPresent | pf::kInstruction);
    EXPECT_EQ(fault(rodata, AccessKind::Execute), pf::kPresent | pf::kInstruction);
    EXPECT_EQ(fault(core::mm::kDirectMapBase.value() + 0x10'0000, AccessKind::Execute),
              pf::kPresent | pf::kInstruction);
    EXPECT_EQ(fault(user_page, AccessKind::Execute, Privilege::User),
              pf::kPresent | pf::kUser | pf::kInstruction);
}

TEST_F(SimMmuTest, NotPresentFaultsSayWhatWasTried) {
    uint64_t hole = 0x1234'5000;
    EXPECT_EQ(fault(hole, AccessKind::Read), 0u);
    EXPECT_EQ(fault(hole, AccessKind::Write), pf::kWrite);
    EXPECT_EQ(fault(hole, AccessKind::Read, Privilege::User), pf::kUser);
    EXPECT_EQ(fault(hole, AccessKind::Execute, Privilege::User), pf::kUser | pf::kInstruction);
    auto gp = walk(0x0000'8000'0000'0000, AccessKind::Read);
    EXPECT_EQ(gp.status, WalkStatus::GeneralProtection);
    mmu.cr3 = 0;
    EXPECT_EQ(walk(text, AccessKind::Read).status, WalkStatus::NoPageTable);
}

TEST_F(SimMmuTest, WithoutCr0WpTheKernelWritesReadOnlyPages) {
    mmu.wp = false;
    EXPECT_TRUE(walk(text, AccessKind::Write).ok());
    EXPECT_TRUE(walk(rodata, AccessKind::Write).ok());
    // User mode is not affected.
    user.protect(VirtAddr(user_page), {.user = true}).value().ignore();
    EXPECT_EQ(fault(user_page, AccessKind::Write, Privilege::User),
              pf::kPresent | pf::kWrite | pf::kUser);
}

TEST_F(SimMmuTest, WithoutNxeTheNoExecuteBitIsReserved) {
    mmu.nxe = false;
    // The direct map's leaves (and the data sections) have XD set: a reserved bit now.
    EXPECT_EQ(fault(data, AccessKind::Read), pf::kPresent | pf::kReserved);
    // No I/D bit without NXE (or SMEP).
    EXPECT_EQ(fault(0x1234'5000, AccessKind::Execute), 0u);
    EXPECT_TRUE(walk(text, AccessKind::Execute).ok());
}

TEST_F(SimMmuTest, SmepAndSmapKeepTheKernelOutOfUserPages) {
    EXPECT_TRUE(walk(user_page, AccessKind::Read).ok());
    mmu.smap = true;
    EXPECT_EQ(fault(user_page, AccessKind::Read), pf::kPresent);
    EXPECT_EQ(fault(user_page, AccessKind::Write), pf::kPresent | pf::kWrite);
    mmu.smap = false;
    user.protect(VirtAddr(user_page), {.executable = true, .user = true}).value().ignore();
    EXPECT_TRUE(walk(user_page, AccessKind::Execute).ok());
    mmu.smep = true;
    EXPECT_EQ(fault(user_page, AccessKind::Execute), pf::kPresent | pf::kInstruction);
}

TEST_F(SimMmuTest, ReservedAddressBitsAndLargePageBitsFault) {
    // Point a user PT entry beyond MAXPHYADDR.
    auto t = user.translate(VirtAddr(user_page));
    ASSERT_TRUE(t.ok());
    auto* pml4 = static_cast<uint64_t*>(hal::phys_to_virt(user.pml4()));
    auto* pdpt =
        static_cast<uint64_t*>(hal::phys_to_virt(PhysAddr(pml4[0] & core::mm::pte::kAddress)));
    auto* pd =
        static_cast<uint64_t*>(hal::phys_to_virt(PhysAddr(pdpt[0] & core::mm::pte::kAddress)));
    auto* pt = static_cast<uint64_t*>(hal::phys_to_virt(PhysAddr(pd[2] & core::mm::pte::kAddress)));
    uint64_t saved = pt[0];
    pt[0] |= uint64_t{1} << 50;
    EXPECT_EQ(fault(user_page, AccessKind::Read, Privilege::User),
              pf::kPresent | pf::kUser | pf::kReserved);
    mmu.phys_bits = 52;
    EXPECT_TRUE(walk(user_page, AccessKind::Read, Privilege::User).ok());
    pt[0] = saved;
    // The mapper's entry counts live in bits 52-58, which are not reserved.
    mmu.phys_bits = 46;
    EXPECT_TRUE(walk(user_page, AccessKind::Read, Privilege::User).ok());
}

TEST_F(SimMmuTest, AccessesSetAccessedAndDirtyBitsAndLoadCr3) {
    user.activate();
    EXPECT_EQ(hal_sim::this_mmu().cr3, user.pml4().value());
    auto entry = [&] {
        auto* pml4 = static_cast<uint64_t*>(hal::phys_to_virt(user.pml4()));
        auto* pdpt =
            static_cast<uint64_t*>(hal::phys_to_virt(PhysAddr(pml4[0] & core::mm::pte::kAddress)));
        auto* pd =
            static_cast<uint64_t*>(hal::phys_to_virt(PhysAddr(pdpt[0] & core::mm::pte::kAddress)));
        auto* pt =
            static_cast<uint64_t*>(hal::phys_to_virt(PhysAddr(pd[2] & core::mm::pte::kAddress)));
        return pt[0];
    };
    EXPECT_FALSE(entry() & core::mm::pte::kAccessed);
    // A debugger's walk leaves no trace.
    EXPECT_TRUE(walk(user_page, AccessKind::Write, Privilege::User).ok());
    EXPECT_FALSE(entry() & core::mm::pte::kAccessed);
    EXPECT_TRUE(hal_sim::access(user_page, AccessKind::Read, Privilege::User).ok());
    EXPECT_TRUE(entry() & core::mm::pte::kAccessed);
    EXPECT_FALSE(entry() & core::mm::pte::kDirty);
    EXPECT_TRUE(hal_sim::access(user_page + 8, AccessKind::Write, Privilege::User).ok());
    EXPECT_TRUE(entry() & core::mm::pte::kDirty);
    // The mapper's view is unchanged by the hardware's bits.
    EXPECT_TRUE(user.translate(VirtAddr(user_page)).ok());
}

TEST_F(SimMmuTest, DebuggingHelpersDescribeWalks) {
    auto lines = hal_sim::explain_walk(f.machine->ram(), user.pml4().value(), text);
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_NE(lines[0].find("PML4[511]"), std::string::npos);
    EXPECT_NE(lines[3].find("read-only"), std::string::npos);
    EXPECT_EQ(hal_sim::describe_error_code(pf::kPresent | pf::kWrite),
              "protection supervisor write");
    EXPECT_EQ(hal_sim::describe_error_code(pf::kUser | pf::kInstruction),
              "not-present user instruction fetch");
    EXPECT_NE(hal_sim::describe(walk(text, AccessKind::Write)).find("error code 0x3"),
              std::string::npos);
}

// --- The TLB of user translations (hal_sim::user_walk, through the user copies). ---

struct SimTlbTest : SimMmuTest {
    uint64_t other_page = 0x40'1000;
    PhysAddr first, second;
    bool remapped = false;

    void SetUp() override {
        SimMmuTest::SetUp();
        user.map_new(VirtAddr(other_page), {.writable = true, .user = true}).value().ignore();
        first = user.translate(VirtAddr(user_page)).value().frame;
        second = user.translate(VirtAddr(other_page)).value().frame;
        put(first, 0x1111);
        put(second, 0x2222);
        user.activate();
    }

    static void put(PhysAddr frame, uint64_t value) {
        *static_cast<uint64_t*>(hal::phys_to_virt(frame)) = value;
    }
    // What a user read of `va` finds, through the calling CPU's TLB; 0 if refused.
    static uint64_t read(uint64_t va) {
        uint64_t value = 0;
        return hal::copy_from_user(&value, VirtAddr(va), sizeof value) ? value : 0;
    }
    static hal_sim::Tlb& tlb() { return hal_sim::this_mmu().tlb; }

    // Points user_page at the second frame without a flush (the stale entry stays cached).
    void remap_without_flush() {
        core::mm::Unmapped u = std::move(user.unmap(VirtAddr(user_page)).value());
        u.flush.ignore();
        user.map(VirtAddr(user_page), second, PageSize::Size4KiB, {.user = true}).value().ignore();
        remapped = true; // the first frame is no longer the space's: TearDown frees it
    }

    void TearDown() override {
        if (remapped) {
            EXPECT_TRUE(FrameSource(*f.frames).free(first).ok());
        }
        SimMmuTest::TearDown();
    }
};

TEST_F(SimTlbTest, AStaleTranslationIsUsedUntilThePageIsFlushed) {
    EXPECT_EQ(read(user_page), 0x1111u);
    EXPECT_EQ(tlb().misses, 1u);
    EXPECT_EQ(read(user_page), 0x1111u);
    EXPECT_EQ(tlb().hits, 1u);
    remap_without_flush();
    EXPECT_EQ(read(user_page), 0x1111u) << "a TLB hit does not read the tables again";
    hal::flush_tlb_page(VirtAddr(other_page)); // another page's flush leaves it
    EXPECT_EQ(read(user_page), 0x1111u);
    hal::flush_tlb_page(VirtAddr(user_page + 0x123)); // any address in the page
    EXPECT_EQ(read(user_page), 0x2222u);
}

TEST_F(SimTlbTest, AFullFlushDropsEveryTranslation) {
    EXPECT_EQ(read(user_page), 0x1111u);
    EXPECT_EQ(read(other_page), 0x2222u);
    EXPECT_EQ(tlb().size(), 2u);
    remap_without_flush();
    EXPECT_EQ(read(user_page), 0x1111u);
    hal::flush_tlb_all();
    EXPECT_EQ(tlb().size(), 0u);
    EXPECT_EQ(read(user_page), 0x2222u);
}

TEST_F(SimTlbTest, LoadingCr3DropsEveryTranslation) {
    EXPECT_EQ(read(user_page), 0x1111u);
    remap_without_flush();
    EXPECT_EQ(read(user_page), 0x1111u);
    user.activate(); // the same tables again: still a CR3 load, with no PCIDs
    EXPECT_EQ(read(user_page), 0x2222u);
}

TEST_F(SimTlbTest, AnUnmappedPageStaysReachableUntilFlushed) {
    EXPECT_EQ(read(user_page), 0x1111u);
    core::mm::Unmapped u = std::move(user.unmap(VirtAddr(user_page)).value());
    EXPECT_EQ(read(user_page), 0x1111u) << "the machine would still reach the frame";
    u.flush.flush();
    EXPECT_EQ(read(user_page), 0u) << "refused once flushed";
    EXPECT_TRUE(FrameSource(*f.frames).free(u.frame).ok());
}

TEST_F(SimTlbTest, AWriteThroughAnEntryAReadFilledWalksAgainForTheDirtyBit) {
    auto leaf = [&] {
        return hal_sim::walk(f.machine->ram(), hal_sim::this_mmu(), user_page, AccessKind::Read,
                             Privilege::User)
            .leaf;
    };
    EXPECT_EQ(read(user_page), 0x1111u);
    EXPECT_FALSE(leaf() & core::mm::pte::kDirty);
    uint64_t value = 0x3333;
    EXPECT_TRUE(hal::copy_to_user(VirtAddr(user_page), &value, sizeof value));
    EXPECT_TRUE(leaf() & core::mm::pte::kDirty);
    EXPECT_EQ(tlb().misses, 2u);
    EXPECT_TRUE(hal::copy_to_user(VirtAddr(user_page), &value, sizeof value));
    EXPECT_EQ(tlb().hits, 1u) << "the second write hits";
    // Made read-only without a flush: the cached entry still allows the write, as on the
    // machine...
    user.protect(VirtAddr(user_page), {.user = true, .owned = true}).value().ignore();
    EXPECT_TRUE(hal::copy_to_user(VirtAddr(user_page), &value, sizeof value));
    // ...until it is flushed; an entry a read fills then refuses the write after a walk.
    hal::flush_tlb_page(VirtAddr(user_page));
    EXPECT_EQ(read(user_page), 0x3333u);
    EXPECT_FALSE(hal::copy_to_user(VirtAddr(user_page), &value, sizeof value));
    EXPECT_EQ(tlb().size(), 0u) << "a refused access leaves no entry";
}

TEST(SimTlb, SizeIsBoundedAndReplacementIsInTurn) {
    hal_sim::Tlb tlb;
    hal_sim::WalkResult walk;
    walk.status = WalkStatus::Ok;
    walk.page_size = 4096;
    for (uint64_t page = 0; page < 100; ++page) {
        walk.pa = 0x10'0000 + page * 4096;
        tlb.fill(page * 4096, AccessKind::Read, walk);
    }
    EXPECT_EQ(tlb.size(), hal_sim::Tlb::kSets * hal_sim::Tlb::kWays);
    // Set 0 was filled with pages 0, 16, 32, 48, then 64, 80 and 96 replaced the first three.
    EXPECT_EQ(tlb.find(0), nullptr);
    EXPECT_EQ(tlb.find(16 * 4096), nullptr);
    EXPECT_EQ(tlb.find(32 * 4096), nullptr);
    EXPECT_NE(tlb.find(48 * 4096), nullptr);
    EXPECT_NE(tlb.find(80 * 4096), nullptr);
    ASSERT_NE(tlb.find(96 * 4096 + 5), nullptr);
    EXPECT_EQ(tlb.find(96 * 4096 + 5)->frame, 0x10'0000u + 96 * 4096);
}

TEST(SimTlb, InvalidatingAnyAddressOfALargePageDropsAllItsPieces) {
    hal_sim::Tlb tlb;
    hal_sim::WalkResult walk;
    walk.status = WalkStatus::Ok;
    walk.page_size = 2 << 20;
    for (uint64_t va : {0x20'0000ull, 0x20'1000ull, 0x3F'F000ull, 0x40'0000ull}) {
        walk.pa = 0x8000'0000 + va;
        tlb.fill(va, AccessKind::Read, walk);
    }
    EXPECT_EQ(tlb.size(), 4u);
    tlb.drop(0x30'0000);
    EXPECT_EQ(tlb.size(), 1u);
    EXPECT_NE(tlb.find(0x40'0000), nullptr) << "the next large page stays";
}

TEST(SimTlb, InvalidatingASmallPageDropsItAloneAndAfterAFullFlushLargePagesStillGo) {
    hal_sim::Tlb tlb;
    hal_sim::WalkResult walk;
    walk.status = WalkStatus::Ok;
    walk.page_size = 4096;
    for (uint64_t page : {3ull, 19ull, 4ull}) { // 3 and 19 share a set
        walk.pa = 0x10'0000 + page * 4096;
        tlb.fill(page * 4096, AccessKind::Read, walk);
    }
    tlb.drop(19 * 4096 + 8);
    EXPECT_EQ(tlb.size(), 2u);
    EXPECT_EQ(tlb.find(19 * 4096), nullptr);
    EXPECT_NE(tlb.find(3 * 4096), nullptr);
    tlb.clear();
    EXPECT_EQ(tlb.size(), 0u);
    tlb.drop(3 * 4096); // nothing to drop
    // A large page's piece sits in the set of its own 4 KiB page, not in the set of the address
    // an INVLPG names.
    walk.page_size = 2 << 20;
    walk.pa = 0x8000'0000;
    tlb.fill(0x20'5000, AccessKind::Read, walk);
    tlb.fill(0x2000, AccessKind::Read, {.status = WalkStatus::Ok, .pa = 0x9000, .page_size = 4096});
    tlb.drop(0x20'0000);
    EXPECT_EQ(tlb.find(0x20'5000), nullptr);
    EXPECT_NE(tlb.find(0x2000), nullptr);
}

// --- The kernel stacks' translations (hal_sim::StackTlb). ---

// Against a map, through fills, INVLPGs and full flushes in a seeded order, with stack top pages
// spaced as the kernel's slots are (four pages and a guard) in two groups far apart, whose pages
// share their low bits and so their home slots: long runs, backward shifts and probes past
// deleted slots. 40 pages keep the table small and full. (A wrap round the table's end rarely
// comes up here: it has a test of its own, below.)
class SimStackTlbAgainstAMap : public ::testing::TestWithParam<uint64_t> {};

TEST_P(SimStackTlbAgainstAMap, HoldsWhatWasFilledUntilItIsFlushed) {
    const uint64_t pages = GetParam();
    hal_sim::StackTlb tlb;
    std::map<uint64_t, uint64_t> model;
    uint64_t x = 0x9E37'79B9'7F4A'7C15ull;
    auto next = [&x] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return x;
    };
    auto page = [](uint64_t i) {
        uint64_t base = (i & 1) != 0 ? 0xFFFF'FFFF'C000'0000ull : 0xFFFF'8000'0000'0000ull;
        return base + (i >> 1) * 5 * 4096 + 4 * 4096;
    };
    for (int step = 0; step < 200'000; ++step) {
        uint64_t r = next();
        uint64_t va = page(r % pages) + (r >> 40) % 4096; // any address in the page
        switch (r >> 60) {
        case 0:
            tlb.clear();
            model.clear();
            break;
        case 1:
        case 2:
        case 3:
        case 4:
        case 5:
            tlb.drop(va);
            model.erase(va >> 12);
            break;
        default: {
            uint64_t frame = r & 0xF'FFFF'FFFF'F000ull;
            tlb.fill(va, frame);
            model[va >> 12] = frame;
            break;
        }
        }
        if (step % (pages < 100 ? 7 : 997) == 0 || tlb.size() != model.size()) {
            ASSERT_EQ(tlb.size(), model.size()) << "step " << step;
            for (uint64_t i = 0; i < pages; ++i) {
                auto it = model.find(page(i) >> 12);
                ASSERT_EQ(tlb.find(page(i)), it != model.end() ? it->second : tlb.kNone)
                    << "step " << step << ", page " << i;
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(SimStackTlb, SimStackTlbAgainstAMap, ::testing::Values(40, 3000));

// An INVLPG that empties the table's first slot while an entry whose home is the last slot sits
// after it, having wrapped round the end: that entry must move into the hole, or a probe from
// its home meets the hole first and misses it.
TEST(SimStackTlb, AnEntryThatWrappedRoundTheEndMovesIntoAHoleBeforeIt) {
    // The home slot of a page in the table's first 64 slots (StackTlb's, mirrored here).
    auto home = [](uint64_t page) { return page & 63; };
    std::vector<uint64_t> last, first;
    for (uint64_t page = 1; last.size() < 2 || first.empty(); ++page) {
        if (home(page) == 63 && last.size() < 2) {
            last.push_back(page);
        } else if (home(page) == 0 && first.empty()) {
            first.push_back(page);
        }
    }
    hal_sim::StackTlb tlb;
    tlb.fill(last[0] << 12, 0x1000);  // slot 63
    tlb.fill(first[0] << 12, 0x2000); // slot 0
    tlb.fill(last[1] << 12, 0x3000);  // 63 and 0 taken: slot 1
    tlb.drop(first[0] << 12);
    EXPECT_EQ(tlb.find(last[0] << 12), 0x1000u);
    EXPECT_EQ(tlb.find(first[0] << 12), tlb.kNone);
    EXPECT_EQ(tlb.find(last[1] << 12), 0x3000u);
    tlb.drop(last[0] << 12); // and the other way: slot 63 emptied, slot 0 moves into it
    EXPECT_EQ(tlb.find(last[1] << 12), 0x3000u);
    EXPECT_EQ(tlb.size(), 1u);
}

TEST(SimStackTlb, AFillReplacesThePagesFrameAndAFullTableForgetsEverything) {
    hal_sim::StackTlb tlb;
    tlb.fill(0x5000, 0x1000);
    tlb.fill(0x5ABC, 0x2000);
    EXPECT_EQ(tlb.size(), 1u);
    EXPECT_EQ(tlb.find(0x5FFF), 0x2000u);
    for (uint64_t i = 1; i < hal_sim::StackTlb::kMaxEntries; ++i) {
        tlb.fill(0x5000 + i * 0x1000, i << 12);
    }
    EXPECT_EQ(tlb.size(), hal_sim::StackTlb::kMaxEntries);
    EXPECT_EQ(tlb.find(0x5000), 0x2000u);
    tlb.fill(0x1'0000'0000, 0x3000); // one more than it holds: as a full flush, then the fill
    EXPECT_EQ(tlb.size(), 1u);
    EXPECT_EQ(tlb.find(0x5000), tlb.kNone);
    EXPECT_EQ(tlb.find(0x1'0000'0000), 0x3000u);
    tlb.clear();
    EXPECT_EQ(tlb.find(0x1'0000'0000), tlb.kNone);
    tlb.drop(0x1'0000'0000); // nothing to drop
    EXPECT_EQ(tlb.size(), 0u);
}

// --- Faults delivered to the core, in a running machine. ---

// The test kernel's choice of what to touch once its address space is loaded.
enum class Touch { WriteText, OverflowStack, UserReadsKernel };
Touch s_touch;
// NOTE: outside the kernel's stack, which a stopped machine abandons without unwinding.
std::unique_ptr<KernelSpaceInputs> s_inputs;

[[noreturn]] void touching_kernel(const core::BootInfo& info) {
    core::mm::init_physical_memory(*info.bootboot);
    hal_sim::Machine& m = *hal_sim::Machine::current();
    s_inputs = std::make_unique<KernelSpaceInputs>(m, duet::test::boot_regions(m));
    const KernelSpaceInputs& in = *s_inputs;
    auto& ks = core::mm::kernel_space();
    MUST(ks.build(in.desc, FrameSource(core::mm::frames())));
    hal::set_page_attribute_table(core::mm::kPatValue);
    ks.activate();
    core::mm::log_kernel_space();
    switch (s_touch) {
    case Touch::WriteText:
        (void)hal_sim::access(in.desc.image.text_start.value() + 0x40, AccessKind::Write,
                              Privilege::Supervisor);
        break;
    case Touch::OverflowStack: {
        core::mm::KernelStack stack = MUST(ks.alloc_stack());
        // A push just below the stack's lowest byte.
        (void)hal_sim::access(stack.bottom.value() - 8, AccessKind::Write, Privilege::Supervisor);
        break;
    }
    case Touch::UserReadsKernel:
        (void)hal_sim::access(core::mm::kDirectMapBase.value() + 0x10'0000, AccessKind::Read,
                              Privilege::User);
        break;
    }
    hal::halt_machine(hal::ExitCode::Success);
}

hal_sim::RunResult run_touching(Touch touch, std::string* com1) {
    s_touch = touch;
    hal_sim::MachineConfig config;
    config.memory = duet::test::fixture("qemu-q35-2g");
    config.kernel.boot_main = &touching_kernel;
    hal_sim::Machine m(config);
    auto r = m.run();
    s_inputs.reset();
    *com1 = m.com1().transcript();
    EXPECT_EQ(m.cpu(0).mmu.page_faults, 1u);
    EXPECT_EQ(m.cpu(0).mmu.pat, core::mm::kPatValue);
    return r;
}

TEST(SimMmuFaults, AWriteToKernelTextReachesTheCoresHandler) {
    std::string out;
    auto r = run_touching(Touch::WriteText, &out);
    EXPECT_EQ(r.verdict, hal_sim::Verdict::Panic);
    EXPECT_NE(out.find("vm: W^X holds"), std::string::npos) << out;
    EXPECT_NE(out.find("panic: page fault: kernel write at 0xffffffffffe02040: protection "
                       "(error 0x03, cpu 0)"),
              std::string::npos)
        << out;
}

TEST(SimMmuFaults, AStackOverflowIsNamedAsSuch) {
    std::string out;
    auto r = run_touching(Touch::OverflowStack, &out);
    EXPECT_EQ(r.verdict, hal_sim::Verdict::Panic);
    EXPECT_NE(out.find("panic: kernel stack overflow at 0xffffffffc0000ff8 (guard page of stack "
                       "slot 0, cpu 0)"),
              std::string::npos)
        << out;
}

TEST(SimMmuFaults, AUserReadOfKernelMemory) {
    std::string out;
    auto r = run_touching(Touch::UserReadsKernel, &out);
    EXPECT_EQ(r.verdict, hal_sim::Verdict::Panic);
    EXPECT_NE(out.find("page fault: user read at 0xffff800000100000: protection (error 0x05"),
              std::string::npos)
        << out;
}

} // namespace
