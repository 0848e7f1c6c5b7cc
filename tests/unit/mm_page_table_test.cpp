// The mapper: entries in the hardware's format, map/unmap/protect/translate for every page
// size, tables taken and returned, flush tokens, and a randomized sequence checked against a
// reference model.

#include "vm_support.hpp"

#include <core/mm/page_table.hpp>
#include <hal/mmu.hpp>
#include <hal_sim/mmu.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <vector>

namespace {

using core::Error;
using core::mm::CacheMode;
using core::mm::FlushBatch;
using core::mm::FlushToken;
using core::mm::FrameSource;
using core::mm::Mapper;
using core::mm::PageFlags;
using core::mm::PageSize;
using duet::test::FramesOnMachine;
using duet::test::GiB;
using duet::test::MiB;
using hal::PhysAddr;
using hal::VirtAddr;

constexpr uint64_t k4K = 4096;
constexpr uint64_t k2M = 2 * MiB;

struct MapperTest : ::testing::Test {
    FramesOnMachine f{duet::test::fixture("qemu-q35-2g"), 1};
    uint64_t tables_before = 0;
    Mapper mapper;

    void SetUp() override {
        f.init();
        tables_before = duet::test::page_table_frames(*f.frames);
        auto m = Mapper::create(FrameSource(*f.frames));
        ASSERT_TRUE(m.ok());
        mapper = m.value();
    }

    // Page-table frames this test's mapper holds (the PML4 included).
    uint64_t tables() { return duet::test::page_table_frames(*f.frames) - tables_before; }
    hal_sim::MmuState& mmu() { return f.machine->current_cpu().mmu; }

    // The error of a map() that is expected to fail (a success is flushed and reported as
    // Error::Busy's opposite: the test then fails on the comparison).
    Error map_error(VirtAddr va, PhysAddr pa, PageSize size, PageFlags flags = {}) {
        auto r = mapper.map(va, pa, size, flags);
        if (r.ok()) {
            r.value().ignore();
            ADD_FAILURE() << "map of " << std::hex << va.value() << " succeeded";
            return Error::NotFound;
        }
        return r.error();
    }

    void map_ok(VirtAddr va, PhysAddr pa, PageSize size, PageFlags flags = {}) {
        auto r = mapper.map(va, pa, size, flags);
        ASSERT_TRUE(r.ok()) << core::describe(r.error());
        r.value().flush();
    }

    void unmap_ok(VirtAddr va) {
        auto r = mapper.unmap(va);
        ASSERT_TRUE(r.ok()) << core::describe(r.error());
        r.value().flush.flush();
    }
};

TEST(PageTableEntries, LeafEncodingRoundTrips) {
    for (auto size : {PageSize::Size4KiB, PageSize::Size2MiB, PageSize::Size1GiB}) {
        for (unsigned cache = 0; cache < core::mm::kCacheModeCount; ++cache) {
            for (unsigned bits = 0; bits < 32; ++bits) {
                PageFlags flags{.writable = (bits & 1) != 0,
                                .executable = (bits & 2) != 0,
                                .user = (bits & 4) != 0,
                                .global = (bits & 8) != 0,
                                .cache = static_cast<CacheMode>(cache),
                                .owned = (bits & 16) != 0};
                PhysAddr pa(core::mm::page_bytes(size) * 12345);
                uint64_t e = core::mm::make_leaf(pa, size, flags);
                EXPECT_EQ(core::mm::leaf_flags(e, size), flags);
                EXPECT_EQ(core::mm::leaf_address(e, size), pa);
                EXPECT_TRUE(e & core::mm::pte::kPresent);
                // Bit 7 is PS in a large leaf and the PAT bit in a 4 KiB one.
                EXPECT_EQ((e & core::mm::pte::kLarge) != 0,
                          size != PageSize::Size4KiB || cache >= 4);
                EXPECT_EQ((e & core::mm::pte::kNoExecute) != 0, !flags.executable);
                EXPECT_EQ(e & core::mm::pte::kCountBits, 0u);
            }
        }
    }
}

TEST(PageTableEntries, PatHasWriteBackFirstAndWriteCombiningAvailable) {
    auto entry = [](CacheMode m) {
        return (core::mm::kPatValue >> (8 * static_cast<unsigned>(m))) & 0xFF;
    };
    // Entries 0-3 as at power-on, so that an entry written before the PAT is loaded keeps its
    // meaning.
    EXPECT_EQ(core::mm::kPatValue & 0xFFFF'FFFF, hal_sim::kPatPowerOn & 0xFFFF'FFFF);
    EXPECT_EQ(entry(CacheMode::WriteBack), core::mm::pat::kWb);
    EXPECT_EQ(entry(CacheMode::WriteThrough), core::mm::pat::kWt);
    EXPECT_EQ(entry(CacheMode::UncachedMinus), core::mm::pat::kUcMinus);
    EXPECT_EQ(entry(CacheMode::Uncacheable), core::mm::pat::kUc);
    EXPECT_EQ(entry(CacheMode::WriteCombining), core::mm::pat::kWc);
    EXPECT_EQ(entry(CacheMode::WriteProtect), core::mm::pat::kWp);
    // A write-combining 4 KiB page selects PAT entry 4 through the PAT bit alone; a 2 MiB one
    // through bit 12.
    uint64_t e = core::mm::make_leaf(PhysAddr(0x1000), PageSize::Size4KiB,
                                     {.writable = true, .cache = CacheMode::WriteCombining});
    EXPECT_EQ(e & (core::mm::pte::kWriteThrough | core::mm::pte::kCacheDisable), 0u);
    EXPECT_TRUE(e & core::mm::pte::kPat4KiB);
    e = core::mm::make_leaf(PhysAddr(k2M), PageSize::Size2MiB,
                            {.writable = true, .cache = CacheMode::WriteCombining});
    EXPECT_TRUE(e & core::mm::pte::kPatLarge);
    EXPECT_EQ(core::mm::leaf_address(e, PageSize::Size2MiB), PhysAddr(k2M));
}

TEST_F(MapperTest, MapTranslateUnmapReturnsTheTables) {
    EXPECT_EQ(tables(), 1u); // the PML4
    VirtAddr va(0x0000'1234'5678'9000);
    uint64_t flushes = mmu().page_flushes;
    auto t = mapper.map(va, PhysAddr(0x4567'8000), PageSize::Size4KiB, {.writable = true});
    ASSERT_TRUE(t.ok());
    t.value().flush();
    EXPECT_EQ(mmu().page_flushes, flushes + 1);
    EXPECT_EQ(tables(), 4u); // + PDPT, PD, PT

    auto tr = mapper.translate(va.offset(0x123));
    ASSERT_TRUE(tr.ok());
    EXPECT_EQ(tr.value().address, PhysAddr(0x4567'8123));
    EXPECT_EQ(tr.value().frame, PhysAddr(0x4567'8000));
    EXPECT_EQ(tr.value().page, va);
    EXPECT_EQ(tr.value().size, PageSize::Size4KiB);
    EXPECT_TRUE(tr.value().flags.writable);
    EXPECT_FALSE(tr.value().flags.executable);
    EXPECT_EQ(mapper.translate(va.offset(k4K)).error(), Error::NotFound);
    EXPECT_TRUE(mapper.maps_to(va, PhysAddr(0x4567'8000)));
    EXPECT_TRUE(mapper.maps_to(va.offset(0x123), PhysAddr(0x4567'8000)));
    EXPECT_FALSE(mapper.maps_to(va, PhysAddr(0x4567'9000)));
    EXPECT_FALSE(mapper.maps_to(va.offset(k4K), PhysAddr(0x4567'9000)));
    EXPECT_FALSE(mapper.maps_to(VirtAddr(0x0000'8000'0000'0000), PhysAddr(0))); // not canonical

    auto u = mapper.unmap(va);
    ASSERT_TRUE(u.ok());
    EXPECT_EQ(u.value().frame, PhysAddr(0x4567'8000));
    EXPECT_EQ(u.value().size, PageSize::Size4KiB);
    EXPECT_TRUE(u.value().flags.writable);
    // The emptied tables wait for the flush before they go back to the frame allocator.
    EXPECT_EQ(tables(), 4u);
    u.value().flush.flush();
    EXPECT_EQ(mmu().page_flushes, flushes + 2);
    EXPECT_EQ(tables(), 1u);
    EXPECT_EQ(mapper.unmap(va).error(), Error::NotFound);
}

TEST_F(MapperTest, EntryCountsLiveInTheIgnoredBits) {
    VirtAddr base(0x0000'0040'0000'0000);
    for (uint64_t i = 0; i < 300; ++i) {
        map_ok(base.offset(i * k4K), PhysAddr(0x10'0000 + i * k4K), PageSize::Size4KiB);
    }
    auto pt = [&] {
        // The PT is what the PD entry for `base` points at.
        auto* pml4 = static_cast<uint64_t*>(hal::phys_to_virt(mapper.pml4()));
        uint64_t pdpt = pml4[core::mm::table_index(base, 4)] & core::mm::pte::kAddress;
        auto* pdpt_t = static_cast<uint64_t*>(hal::phys_to_virt(PhysAddr(pdpt)));
        uint64_t pd = pdpt_t[core::mm::table_index(base, 3)] & core::mm::pte::kAddress;
        auto* pd_t = static_cast<uint64_t*>(hal::phys_to_virt(PhysAddr(pd)));
        return PhysAddr(pd_t[core::mm::table_index(base, 2)] & core::mm::pte::kAddress);
    }();
    EXPECT_EQ(Mapper::entry_count(pt), 300u);
    // The count bits change nothing the walker sees.
    auto r = duet::test::walk(*f.machine, mapper.pml4().value(), base.value(),
                              hal_sim::AccessKind::Read);
    ASSERT_TRUE(r.ok()) << hal_sim::describe(r);
    EXPECT_EQ(r.pa, 0x10'0000u);
    for (uint64_t i = 0; i < 299; ++i) {
        unmap_ok(base.offset(i * k4K));
    }
    EXPECT_EQ(Mapper::entry_count(pt), 1u);
    EXPECT_EQ(tables(), 4u);
    unmap_ok(base.offset(299 * k4K));
    EXPECT_EQ(tables(), 1u);
}

TEST_F(MapperTest, EachPageSizeAndWhatOverlapsIt) {
    // A 1 GiB page, a 2 MiB page and 4 KiB pages in different places.
    map_ok(VirtAddr(1 * GiB), PhysAddr(3 * GiB), PageSize::Size1GiB, {.writable = true});
    map_ok(VirtAddr(2 * GiB + 4 * k2M), PhysAddr(5 * k2M), PageSize::Size2MiB);
    map_ok(VirtAddr(2 * GiB + 8 * k2M + 3 * k4K), PhysAddr(7 * k4K), PageSize::Size4KiB);

    auto t = mapper.translate(VirtAddr(1 * GiB + 0x12345678));
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t.value().size, PageSize::Size1GiB);
    EXPECT_EQ(t.value().address, PhysAddr(3 * GiB + 0x12345678));
    EXPECT_EQ(t.value().page, VirtAddr(1 * GiB));
    t = mapper.translate(VirtAddr(2 * GiB + 4 * k2M + 0x1234));
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t.value().size, PageSize::Size2MiB);
    EXPECT_EQ(t.value().address, PhysAddr(5 * k2M + 0x1234));
    // maps_to() answers for 4 KiB pages only: inside a large page it is false.
    EXPECT_TRUE(mapper.maps_to(VirtAddr(2 * GiB + 8 * k2M + 3 * k4K), PhysAddr(7 * k4K)));
    EXPECT_FALSE(mapper.maps_to(VirtAddr(2 * GiB + 4 * k2M), PhysAddr(5 * k2M)));
    EXPECT_FALSE(mapper.maps_to(VirtAddr(1 * GiB), PhysAddr(3 * GiB)));

    // Anything inside a large page is busy, and so is a large page over smaller ones.
    EXPECT_EQ(map_error(VirtAddr(1 * GiB + 5 * k2M), PhysAddr(0), PageSize::Size2MiB), Error::Busy);
    EXPECT_EQ(map_error(VirtAddr(1 * GiB + 7 * k4K), PhysAddr(0), PageSize::Size4KiB), Error::Busy);
    EXPECT_EQ(map_error(VirtAddr(2 * GiB + 4 * k2M + k4K), PhysAddr(0), PageSize::Size4KiB),
              Error::Busy);
    EXPECT_EQ(map_error(VirtAddr(2 * GiB + 8 * k2M), PhysAddr(0), PageSize::Size2MiB), Error::Busy);
    EXPECT_EQ(map_error(VirtAddr(2 * GiB), PhysAddr(0), PageSize::Size1GiB), Error::Busy);
    EXPECT_EQ(map_error(VirtAddr(1 * GiB), PhysAddr(0), PageSize::Size1GiB), Error::Busy);

    // A large page goes as a whole, from its start only.
    EXPECT_EQ(mapper.unmap(VirtAddr(1 * GiB + k2M)).error(), Error::InvalidArgument);
    EXPECT_EQ(mapper.protect(VirtAddr(2 * GiB + 4 * k2M + k4K), {}).error(),
              Error::InvalidArgument);
    auto u = mapper.unmap(VirtAddr(1 * GiB));
    ASSERT_TRUE(u.ok());
    EXPECT_EQ(u.value().size, PageSize::Size1GiB);
    EXPECT_EQ(u.value().frame, PhysAddr(3 * GiB));
    u.value().flush.flush();
    unmap_ok(VirtAddr(2 * GiB + 4 * k2M));
    unmap_ok(VirtAddr(2 * GiB + 8 * k2M + 3 * k4K));
    EXPECT_EQ(tables(), 1u);
}

TEST_F(MapperTest, RejectsWhatTheHardwareCannotMap) {
    EXPECT_EQ(map_error(VirtAddr(0x1001), PhysAddr(0), PageSize::Size4KiB), Error::InvalidArgument);
    EXPECT_EQ(map_error(VirtAddr(0x1000), PhysAddr(0x10), PageSize::Size4KiB),
              Error::InvalidArgument);
    EXPECT_EQ(map_error(VirtAddr(k4K * 3), PhysAddr(0), PageSize::Size2MiB),
              Error::InvalidArgument);
    EXPECT_EQ(map_error(VirtAddr(k2M), PhysAddr(k4K), PageSize::Size2MiB), Error::InvalidArgument);
    EXPECT_EQ(map_error(VirtAddr(k2M), PhysAddr(0), PageSize::Size1GiB), Error::InvalidArgument);
    EXPECT_EQ(map_error(VirtAddr(0x0000'8000'0000'0000), PhysAddr(0), PageSize::Size4KiB),
              Error::InvalidArgument); // not canonical
    EXPECT_EQ(map_error(VirtAddr(0x1000), PhysAddr(uint64_t{1} << 52), PageSize::Size4KiB),
              Error::InvalidArgument);
    EXPECT_EQ(map_error(VirtAddr(0x1000), PhysAddr(0), PageSize::Size4KiB,
                        {.cache = static_cast<CacheMode>(7)}),
              Error::InvalidArgument);
    // The kernel half grows only through the kernel's own tables.
    EXPECT_EQ(map_error(VirtAddr(0xFFFF'8000'0000'0000), PhysAddr(0), PageSize::Size4KiB),
              Error::InvalidArgument);
    EXPECT_EQ(tables(), 1u);
}

TEST_F(MapperTest, ProtectChangesRightsAndKeepsFrameAndOwnership) {
    VirtAddr va(0x7000'0000);
    map_ok(va, PhysAddr(0x5000), PageSize::Size4KiB, {.writable = true, .owned = true});
    auto p = mapper.protect(va, {.executable = true, .user = true});
    ASSERT_TRUE(p.ok());
    p.value().flush();
    auto t = mapper.translate(va);
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t.value().frame, PhysAddr(0x5000));
    EXPECT_FALSE(t.value().flags.writable);
    EXPECT_TRUE(t.value().flags.executable);
    EXPECT_TRUE(t.value().flags.user);
    EXPECT_TRUE(t.value().flags.owned);
    EXPECT_EQ(mapper.protect(va.offset(k4K), {}).error(), Error::NotFound);
    unmap_ok(va);
}

TEST_F(MapperTest, RangesUseTheLargestPagesAlignmentAllows) {
    FlushBatch batch;
    // From 1 GiB - 2 MiB - 8 KiB: two 4 KiB pages, a 2 MiB page up to the GiB, two 1 GiB
    // pages, a 2 MiB page and forty 4 KiB pages.
    VirtAddr va(GiB - k2M - 2 * k4K);
    uint64_t bytes = 2 * k4K + k2M + 2 * GiB + k2M + 40 * k4K;
    ASSERT_TRUE(mapper.map_range(va, PhysAddr(va.value()), bytes, {}, &batch).ok());
    batch.ignore();
    std::map<PageSize, int> sizes;
    for (uint64_t off = 0; off < bytes;) {
        auto t = mapper.translate(va.offset(off));
        ASSERT_TRUE(t.ok());
        EXPECT_EQ(t.value().address, PhysAddr(va.value() + off));
        ++sizes[t.value().size];
        off = t.value().page.value() + core::mm::page_bytes(t.value().size) - va.value();
    }
    EXPECT_EQ(sizes[PageSize::Size4KiB], 42);
    EXPECT_EQ(sizes[PageSize::Size2MiB], 2);
    EXPECT_EQ(sizes[PageSize::Size1GiB], 2);

    // Cutting a large page in two is refused before anything changes.
    EXPECT_EQ(mapper.unmap_range(VirtAddr(GiB + k2M), k2M, &batch).error(), Error::InvalidArgument);
    EXPECT_EQ(mapper.unmap_range(VirtAddr(GiB - k2M + k4K), k4K, &batch).error(),
              Error::InvalidArgument);
    ASSERT_TRUE(mapper.unmap_range(va, bytes, &batch).ok());
    EXPECT_GT(batch.pages(), 0u);
    uint64_t full = mmu().full_flushes;
    batch.flush(); // more than kMaxPages pages: the whole TLB
    EXPECT_EQ(mmu().full_flushes, full + 1);
    EXPECT_EQ(tables(), 1u);
}

TEST_F(MapperTest, AFailedMapLeavesNoTableBehind) {
    // Take every free frame but one: the next map needs three tables.
    std::vector<PhysAddr> taken;
    for (;;) {
        auto r = f.frames->alloc_frame(core::mm::FrameOwner::Kernel);
        if (!r.ok()) {
            break;
        }
        taken.push_back(r.value());
    }
    ASSERT_FALSE(taken.empty());
    ASSERT_TRUE(f.frames->free(taken.back()).ok());
    taken.pop_back();
    EXPECT_EQ(map_error(VirtAddr(0x4000'0000'0000), PhysAddr(0), PageSize::Size4KiB),
              Error::OutOfMemory);
    EXPECT_EQ(tables(), 1u);
    EXPECT_EQ(f.frames->stats().free, 1u);
    for (PhysAddr pa : taken) {
        ASSERT_TRUE(f.frames->free(pa).ok());
    }
}

// --- Randomized against a reference model. ---

struct Mapping {
    uint64_t pa;
    PageSize size;
    PageFlags flags;
};

uint64_t bytes_of(PageSize s) {
    return core::mm::page_bytes(s);
}

// The tables the model's mappings need: the PML4, a PDPT per 512 GiB slot used, a PD per GiB
// that holds anything smaller than 1 GiB, a PT per 2 MiB that holds 4 KiB pages.
uint64_t expected_tables(const std::map<uint64_t, Mapping>& model) {
    std::set<uint64_t> pdpts, pds, pts;
    for (const auto& [va, m] : model) {
        pdpts.insert(va >> 39);
        if (m.size != PageSize::Size1GiB) {
            pds.insert(va >> 30);
        }
        if (m.size == PageSize::Size4KiB) {
            pts.insert(va >> 21);
        }
    }
    return 1 + pdpts.size() + pds.size() + pts.size();
}

// The mapping that covers `va`, if any.
const std::pair<const uint64_t, Mapping>* covering(const std::map<uint64_t, Mapping>& model,
                                                   uint64_t va) {
    auto it = model.upper_bound(va);
    if (it == model.begin()) {
        return nullptr;
    }
    --it;
    return va < it->first + bytes_of(it->second.size) ? &*it : nullptr;
}

bool overlaps(const std::map<uint64_t, Mapping>& model, uint64_t va, uint64_t bytes) {
    if (covering(model, va) != nullptr) {
        return true;
    }
    auto it = model.lower_bound(va);
    return it != model.end() && it->first < va + bytes;
}

TEST_F(MapperTest, RandomSequencesAgreeWithAReferenceModel) {
    std::mt19937_64 rng(20240611);
    std::map<uint64_t, Mapping> model;
    // Two windows of 4 GiB in different PML4 slots, so that every level gets created, shared
    // and emptied.
    const uint64_t windows[] = {0x0000'0010'0000'0000, 0x0000'7F00'0000'0000};
    auto random_va = [&](PageSize size) {
        uint64_t w = windows[rng() % 2];
        uint64_t span = 4 * GiB / bytes_of(size);
        // Mostly in the first 64 MiB of the window, so that collisions happen.
        if (size != PageSize::Size1GiB && rng() % 4 != 0) {
            span = 64 * MiB / bytes_of(size);
        }
        return w + (rng() % span) * bytes_of(size);
    };
    uint64_t expected_flushes = mmu().flushes();
    for (int step = 0; step < 20000; ++step) {
        unsigned op = rng() % 100;
        if (op < 50) {
            unsigned pick = rng() % 100;
            PageSize size = pick < 80   ? PageSize::Size4KiB
                            : pick < 97 ? PageSize::Size2MiB
                                        : PageSize::Size1GiB;
            uint64_t va = random_va(size);
            uint64_t pa = (rng() % (uint64_t{1} << 20)) * bytes_of(size) % (uint64_t{1} << 46);
            pa &= ~(bytes_of(size) - 1);
            PageFlags flags{.writable = (rng() & 1) != 0,
                            .executable = (rng() & 1) != 0,
                            .user = (rng() & 1) != 0,
                            .cache = static_cast<CacheMode>(rng() % core::mm::kCacheModeCount)};
            auto r = mapper.map(VirtAddr(va), PhysAddr(pa), size, flags);
            if (overlaps(model, va, bytes_of(size))) {
                ASSERT_FALSE(r.ok()) << "step " << step;
                ASSERT_EQ(r.error(), Error::Busy);
            } else {
                ASSERT_TRUE(r.ok()) << "step " << step << ": " << core::describe(r.error());
                model[va] = {pa, size, flags};
                if (rng() & 1) {
                    r.value().flush();
                    ++expected_flushes;
                } else {
                    r.value().ignore();
                }
            }
        } else if (op < 85) {
            uint64_t va;
            if (!model.empty() && rng() % 5 != 0) {
                auto it = model.begin();
                std::advance(it, static_cast<long>(rng() % model.size()));
                va = it->first;
                if (rng() % 10 == 0 && it->second.size != PageSize::Size4KiB) {
                    va += k4K; // inside a large page
                }
            } else {
                va = random_va(PageSize::Size4KiB);
            }
            auto r = mapper.unmap(VirtAddr(va));
            const auto* c = covering(model, va);
            if (c == nullptr) {
                ASSERT_EQ(r.error(), Error::NotFound) << "step " << step;
            } else if (c->first != va) {
                ASSERT_EQ(r.error(), Error::InvalidArgument) << "step " << step;
            } else {
                ASSERT_TRUE(r.ok()) << "step " << step;
                EXPECT_EQ(r.value().frame, PhysAddr(c->second.pa));
                EXPECT_EQ(r.value().size, c->second.size);
                EXPECT_EQ(r.value().flags, c->second.flags);
                r.value().flush.flush();
                ++expected_flushes;
                model.erase(va);
            }
        } else if (op < 92 && !model.empty()) {
            auto it = model.begin();
            std::advance(it, static_cast<long>(rng() % model.size()));
            PageFlags flags{.writable = (rng() & 1) != 0, .user = (rng() & 1) != 0};
            auto r = mapper.protect(VirtAddr(it->first), flags);
            ASSERT_TRUE(r.ok());
            r.value().flush();
            ++expected_flushes;
            it->second.flags = flags;
        } else {
            // Translate through the mapper and through the simulated MMU.
            uint64_t va = random_va(PageSize::Size4KiB) + rng() % k4K;
            const auto* c = covering(model, va);
            auto t = mapper.translate(VirtAddr(va));
            auto w =
                duet::test::walk(*f.machine, mapper.pml4().value(), va, hal_sim::AccessKind::Read);
            if (c == nullptr) {
                ASSERT_EQ(t.error(), Error::NotFound);
                ASSERT_EQ(w.status, hal_sim::WalkStatus::PageFault);
                ASSERT_EQ(w.error_code, 0u);
            } else {
                uint64_t pa = c->second.pa + (va - c->first);
                ASSERT_TRUE(t.ok());
                EXPECT_EQ(t.value().address, PhysAddr(pa));
                EXPECT_EQ(t.value().flags, c->second.flags);
                ASSERT_TRUE(w.ok()) << hal_sim::describe(w);
                EXPECT_EQ(w.pa, pa);
                EXPECT_EQ(w.writable, c->second.flags.writable);
                EXPECT_EQ(w.executable, c->second.flags.executable);
            }
        }
        if (step % 500 == 0) {
            ASSERT_EQ(tables(), expected_tables(model)) << "step " << step;
            ASSERT_EQ(mapper.count_tables(), expected_tables(model));
        }
    }
    EXPECT_EQ(mmu().flushes(), expected_flushes);
    EXPECT_EQ(tables(), expected_tables(model));

    // Unmapping everything returns every table but the PML4.
    FlushBatch batch;
    for (uint64_t w : windows) {
        ASSERT_TRUE(mapper.unmap_range(VirtAddr(w), 4 * GiB, &batch).ok());
    }
    batch.flush();
    EXPECT_EQ(tables(), 1u);
    EXPECT_EQ(mapper.count_tables(), 1u);
    ASSERT_TRUE(f.frames->free(mapper.pml4()).ok());
    EXPECT_EQ(duet::test::page_table_frames(*f.frames), tables_before);
    EXPECT_TRUE(f.frames->accounting_holds());
}

#ifdef DUET_DEBUG
TEST(FlushTokenDeathTest, ADroppedTokenPanicsInDebugBuilds) {
    EXPECT_DEATH(
        {
            FramesOnMachine f(duet::test::fixture("qemu-q35-2g"), 1);
            f.machine->com1().set_sink([](std::string_view, std::string_view line) {
                std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
            });
            f.init();
            auto m = Mapper::create(FrameSource(*f.frames)).value();
            (void)m.map(VirtAddr(0x1000), PhysAddr(0x1000), PageSize::Size4KiB, {});
        },
        "neither flushed nor ignored");
}
#endif

} // namespace
