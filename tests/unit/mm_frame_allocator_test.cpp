// The frame allocator on a simulated machine: hand-over, blocks, constraints, errors,
// accounting, per-CPU caches, metadata size, and random sequences against a reference model.

#include "mm_support.hpp"

#include <core/mm/physical_memory.hpp>
#include <hal/mmu.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <set>

namespace {

using core::Error;
using core::mm::FrameOwner;
using core::mm::FrameRequest;
using core::mm::FrameStats;
using duet::test::FramesOnMachine;
using duet::test::GiB;
using duet::test::MiB;
using duet::test::TiB;
using hal::PhysAddr;

constexpr auto kMeta = static_cast<size_t>(FrameOwner::FrameMetadata);
constexpr auto kKernel = static_cast<size_t>(FrameOwner::Kernel);

std::vector<firmware::E820Entry> small_map() {
    // 64 MiB: enough for the boot area, small enough to exhaust.
    return duet::test::q35_map(64 * MiB);
}

uint64_t metadata_frames(const FramesOnMachine& f) {
    return core::mm::FrameAllocator::metadata_bytes(f.map.areas.data(), f.map.areas.size()) / 4096;
}

TEST(FrameAllocator, HandOverAccountsEveryFrame) {
    FramesOnMachine f(duet::test::fixture("qemu-q35-2g"));
    // Bring-up allocations before the hand-over, for two owners.
    auto pt = f.bump->alloc(3, FrameOwner::PageTables);
    auto boot = f.bump->alloc(2, FrameOwner::BootData);
    ASSERT_TRUE(pt.ok() && boot.ok());
    f.init();
    FrameStats s = f.frames->stats();
    // 524158 usable frames, minus what the BIOS loader took: [0, 0x15000) (page 0 with it) and
    // [1 MiB, 0x242000) for the initrd and the stand-in kernel.
    EXPECT_EQ(s.total, 524158u - 0x15 - 0x142);
    EXPECT_EQ(s.reserved, 0u);
    EXPECT_EQ(s.used_by[kMeta], metadata_frames(f));
    EXPECT_EQ(s.used_by[static_cast<size_t>(FrameOwner::PageTables)], 3u);
    EXPECT_EQ(s.used_by[static_cast<size_t>(FrameOwner::BootData)], 2u);
    EXPECT_EQ(s.used, metadata_frames(f) + 5);
    EXPECT_EQ(s.free + s.used + s.reserved, s.total);
    EXPECT_EQ(s.metadata_bytes, metadata_frames(f) * 4096);
    EXPECT_TRUE(f.frames->accounting_holds());
    EXPECT_EQ(f.frames->audit(), nullptr);
    EXPECT_TRUE(f.bump->retired());

    // Frames from the bump allocator are ordinary allocated frames: they can be freed.
    EXPECT_TRUE(f.frames->free(pt.value()).ok());
    EXPECT_EQ(f.frames->free(pt.value()).error(), Error::DoubleFree);
    EXPECT_TRUE(f.frames->free(boot.value().offset(4096)).ok());
    s = f.frames->stats();
    EXPECT_EQ(s.used_by[static_cast<size_t>(FrameOwner::PageTables)], 2u);
    EXPECT_EQ(s.used_by[static_cast<size_t>(FrameOwner::BootData)], 1u);
    EXPECT_EQ(f.frames->audit(), nullptr);
}

TEST(FrameAllocator, SingleFramesAreUsableDistinctAndComeBack) {
    FramesOnMachine f(duet::test::fixture("qemu-q35-2g"));
    f.init();
    FrameStats before = f.frames->stats();
    std::set<uint64_t> seen;
    std::vector<PhysAddr> frames;
    for (int i = 0; i < 1000; ++i) {
        auto r = f.frames->alloc_frame(FrameOwner::Kernel);
        ASSERT_TRUE(r.ok());
        PhysAddr pa = r.value();
        ASSERT_TRUE(pa.is_aligned(4096));
        ASSERT_TRUE(f.usable(pa.value(), 4096)) << std::hex << pa.value();
        ASSERT_TRUE(seen.insert(pa.value()).second);
        // The frame is really there: simulated RAM faults on anything else.
        std::memset(hal::phys_to_virt(pa), 0xa5, 4096);
        frames.push_back(pa);
    }
    FrameStats mid = f.frames->stats();
    EXPECT_EQ(mid.used_by[kKernel], 1000u);
    EXPECT_EQ(mid.free, before.free - 1000);
    EXPECT_LE(mid.cached, core::mm::FrameAllocator::kCacheCapacity);
    EXPECT_EQ(f.frames->audit(), nullptr);
    for (PhysAddr pa : frames) {
        ASSERT_TRUE(f.frames->free(pa).ok());
    }
    FrameStats after = f.frames->stats();
    EXPECT_EQ(after.free, before.free);
    EXPECT_EQ(after.used_by[kKernel], 0u);
    EXPECT_EQ(f.frames->audit(), nullptr);
}

TEST(FrameAllocator, UnconstrainedRequestsSpareLowMemory) {
    FramesOnMachine f(duet::test::fixture("qemu-q35-8g"));
    f.init();
    for (int i = 0; i < 300; ++i) {
        auto r = f.frames->alloc_frame(FrameOwner::Kernel);
        ASSERT_TRUE(r.ok());
        EXPECT_GE(r.value().value(), 4 * GiB);
    }
    auto big = f.frames->alloc({.order = 9});
    ASSERT_TRUE(big.ok());
    EXPECT_GE(big.value().value(), 4 * GiB);
}

TEST(FrameAllocator, BlocksOfEveryOrderAreAlignedAndInside) {
    FramesOnMachine f(duet::test::fixture("qemu-q35-8g"));
    f.init();
    std::vector<std::pair<PhysAddr, unsigned>> blocks;
    for (unsigned order = 0; order <= core::mm::kMaxOrder; ++order) {
        auto r = f.frames->alloc({.order = order, .owner = FrameOwner::Heap});
        ASSERT_TRUE(r.ok()) << "order " << order;
        uint64_t bytes = uint64_t{4096} << order;
        EXPECT_TRUE(r.value().is_aligned(bytes)) << "order " << order;
        EXPECT_TRUE(f.usable(r.value().value(), bytes)) << "order " << order;
        blocks.push_back({r.value(), order});
    }
    EXPECT_EQ(f.frames->audit(), nullptr);
    for (auto [pa, order] : blocks) {
        ASSERT_TRUE(f.frames->free(pa, order).ok());
    }
    EXPECT_EQ(f.frames->stats().used_by[static_cast<size_t>(FrameOwner::Heap)], 0u);
    EXPECT_EQ(f.frames->audit(), nullptr);
    // 8 GiB minus the 2 GiB below the hole: six 1 GiB blocks exist, the seventh does not.
    for (int i = 0; i < 6; ++i) {
        ASSERT_TRUE(f.frames->alloc({.order = 18}).ok()) << i;
    }
    EXPECT_EQ(f.frames->alloc({.order = 18}).error(), Error::OutOfMemory);
}

TEST(FrameAllocator, Below1MiBForTrampolines) {
    FramesOnMachine f(duet::test::fixture("qemu-q35-2g"));
    f.init();
    FrameRequest low{.max = core::mm::kBelow1MiB};
    std::set<uint64_t> got;
    for (;;) {
        auto r = f.frames->alloc(low);
        if (!r.ok()) {
            EXPECT_EQ(r.error(), Error::OutOfMemory);
            break;
        }
        EXPECT_LT(r.value().value(), 1 * MiB);
        EXPECT_GE(r.value().value(), 0x15000u); // the BIOS loader's, and a page of stacks
        got.insert(r.value().value());
    }
    // Everything in [0x15000, 636 KiB): 138 frames, the bump allocator took none of them.
    EXPECT_EQ(got.size(), 138u);
    EXPECT_EQ(f.frames->audit(), nullptr);
    // Larger and aligned below 1 MiB: a 64 KiB block on a 64 KiB boundary.
    for (uint64_t pa : got) {
        ASSERT_TRUE(f.frames->free(PhysAddr(pa)).ok());
    }
    auto r = f.frames->alloc({.order = 4, .max = core::mm::kBelow1MiB});
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r.value().is_aligned(64 * 1024));
    EXPECT_LE(r.value().value() + 64 * 1024, 1 * MiB);
}

TEST(FrameAllocator, Below4GiBFor32BitDevices) {
    FramesOnMachine f(duet::test::fixture("qemu-q35-8g"));
    f.init();
    for (unsigned order : {0u, 3u, 9u, 10u}) {
        auto r = f.frames->alloc({.order = order, .max = core::mm::kBelow4GiB});
        ASSERT_TRUE(r.ok());
        EXPECT_LE(r.value().value() + (uint64_t{4096} << order), 4 * GiB);
        // Not from below 1 MiB while there is room between 1 MiB and 4 GiB.
        EXPECT_GE(r.value().value(), 1 * MiB);
    }
    EXPECT_EQ(f.frames->audit(), nullptr);
}

TEST(FrameAllocator, AnyRangeAndAlignment) {
    FramesOnMachine f(duet::test::fixture("qemu-q35-2g"));
    f.init();
    // An odd range that cuts blocks and zones.
    uint64_t lo = 0x1800000 + 5 * 4096;
    uint64_t hi = 0x2345000;
    for (int i = 0; i < 50; ++i) {
        auto r = f.frames->alloc({.order = 2,
                                  .align = 64 * 1024,
                                  .min = PhysAddr(lo),
                                  .max = PhysAddr(hi),
                                  .owner = FrameOwner::User});
        ASSERT_TRUE(r.ok()) << i;
        EXPECT_GE(r.value().value(), lo);
        EXPECT_LE(r.value().value() + 4 * 4096, hi);
        EXPECT_TRUE(r.value().is_aligned(64 * 1024));
    }
    // A single frame aligned to 2 MiB.
    auto r = f.frames->alloc({.align = 2 * MiB});
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r.value().is_aligned(2 * MiB));
    EXPECT_TRUE(f.frames->free(r.value()).ok());
    // A range too small for the block.
    EXPECT_EQ(f.frames->alloc({.order = 3, .min = PhysAddr(0x1600000), .max = PhysAddr(0x1607000)})
                  .error(),
              Error::OutOfMemory);
    EXPECT_EQ(f.frames->audit(), nullptr);
}

TEST(FrameAllocator, BadRequestsAreInvalid) {
    FramesOnMachine f(small_map());
    f.init();
    EXPECT_EQ(f.frames->alloc({.order = 19}).error(), Error::InvalidArgument);
    EXPECT_EQ(f.frames->alloc({.align = 3 * 4096}).error(), Error::InvalidArgument);
    EXPECT_EQ(f.frames->alloc({.align = 2 * GiB}).error(), Error::InvalidArgument);
    EXPECT_EQ(f.frames->alloc({.min = PhysAddr(0x200000), .max = PhysAddr(0x200000)}).error(),
              Error::InvalidArgument);
    PhysAddr one = f.frames->alloc_frame(FrameOwner::Kernel).value();
    EXPECT_EQ(f.frames->free(one, 19).error(), Error::InvalidArgument);
    EXPECT_EQ(f.frames->alloc_frame(static_cast<FrameOwner>(7)).error(), Error::InvalidArgument);
    EXPECT_EQ(f.frames->alloc({.owner = static_cast<FrameOwner>(9)}).error(),
              Error::InvalidArgument);
    EXPECT_TRUE(f.frames->free(one).ok());
}

TEST(FrameAllocator, DoubleFreesAreCaught) {
    FramesOnMachine f(small_map());
    f.init();
    // A single frame: freed into the per-CPU cache, then freed again.
    PhysAddr one = f.frames->alloc_frame(FrameOwner::Kernel).value();
    ASSERT_TRUE(f.frames->free(one).ok());
    EXPECT_EQ(f.frames->free(one).error(), Error::DoubleFree);
    // ... and from another CPU.
    f.on_cpu(1, [&] { EXPECT_EQ(f.frames->free(one).error(), Error::DoubleFree); });
    // A block: merged back into a larger free block, then freed again, whole or in part.
    PhysAddr block = f.frames->alloc({.order = 3}).value();
    ASSERT_TRUE(f.frames->free(block, 3).ok());
    EXPECT_EQ(f.frames->free(block, 3).error(), Error::DoubleFree);
    EXPECT_EQ(f.frames->free(block.offset(5 * 4096)).error(), Error::DoubleFree);
    EXPECT_EQ(f.frames->free(block, 0).error(), Error::DoubleFree);
    // A 2 MiB block, parked in the per-CPU cache of large blocks: whole, in part, as a frame.
    PhysAddr huge = f.frames->alloc({.order = 9}).value();
    ASSERT_TRUE(f.frames->free(huge, 9).ok());
    EXPECT_EQ(f.frames->free(huge, 9).error(), Error::DoubleFree);
    EXPECT_EQ(f.frames->free(huge.offset(17 * 4096)).error(), Error::DoubleFree);
    EXPECT_EQ(f.frames->free(huge).error(), Error::DoubleFree);
    EXPECT_GE(f.frames->stats().cached, 512u);
    EXPECT_EQ(f.frames->audit(), nullptr);
}

TEST(FrameAllocator, ForeignAddressesAreCaught) {
    FramesOnMachine f(duet::test::fixture("qemu-q35-2g"));
    f.init();
    FrameStats before = f.frames->stats();
    EXPECT_EQ(f.frames->free(PhysAddr(0)).error(), Error::ForeignAddress);          // the loader's
    EXPECT_EQ(f.frames->free(PhysAddr(0x9f000)).error(), Error::ForeignAddress);    // firmware
    EXPECT_EQ(f.frames->free(PhysAddr(0x140000)).error(), Error::ForeignAddress);   // the initrd
    EXPECT_EQ(f.frames->free(PhysAddr(0xb0000000)).error(), Error::ForeignAddress); // MMIO
    EXPECT_EQ(f.frames->free(PhysAddr(0xfd00000000)).error(), Error::ForeignAddress);
    EXPECT_EQ(f.frames->free(PhysAddr(0x2000123)).error(), Error::ForeignAddress); // unaligned
    EXPECT_EQ(f.frames->free(f.frames->metadata_base()).error(), Error::ForeignAddress);
    // Inside an allocated block: not what was handed out.
    PhysAddr block = f.frames->alloc({.order = 4}).value();
    EXPECT_EQ(f.frames->free(block.offset(4096)).error(), Error::ForeignAddress);
    // The right address with the wrong order.
    EXPECT_EQ(f.frames->free(block, 0).error(), Error::InvalidArgument);
    EXPECT_EQ(f.frames->free(block, 5).error(), Error::InvalidArgument);
    EXPECT_TRUE(f.frames->free(block, 4).ok());
    FrameStats after = f.frames->stats();
    EXPECT_EQ(after.free, before.free);
    EXPECT_EQ(f.frames->audit(), nullptr);
}

TEST(FrameAllocator, OutOfMemoryIsAnErrorAndEverythingComesBack) {
    FramesOnMachine f(small_map(), 2);
    f.init();
    FrameStats start = f.frames->stats();
    std::vector<PhysAddr> frames;
    // Take it all, alternating CPUs so that both caches hold frames at the end.
    for (uint32_t cpu = 0;; cpu ^= 1) {
        Error error{};
        bool done = false;
        f.on_cpu(cpu, [&] {
            for (int i = 0; i < 100; ++i) {
                auto r = f.frames->alloc_frame(FrameOwner::Kernel);
                if (!r.ok()) {
                    error = r.error();
                    done = true;
                    return;
                }
                frames.push_back(r.value());
            }
        });
        if (done) {
            EXPECT_EQ(error, Error::OutOfMemory);
            break;
        }
    }
    EXPECT_EQ(frames.size(), start.free);
    EXPECT_EQ(f.frames->stats().free, 0u);
    EXPECT_EQ(f.frames->alloc({.order = 0, .max = core::mm::kBelow1MiB}).error(),
              Error::OutOfMemory);
    EXPECT_EQ(f.frames->audit(), nullptr);
    // Free half on each CPU; the caches fill and drain in batches.
    for (size_t i = 0; i < frames.size(); ++i) {
        f.on_cpu(static_cast<uint32_t>(i % 2),
                 [&] { ASSERT_TRUE(f.frames->free(frames[i]).ok()); });
    }
    FrameStats end = f.frames->stats();
    EXPECT_EQ(end.free, start.free);
    EXPECT_LE(end.cached, 2 * core::mm::FrameAllocator::kCacheCapacity);
    EXPECT_EQ(f.frames->audit(), nullptr);
    // Frames still parked in the caches are given back when a block needs them: the largest
    // block the memory had at the start is there again.
    unsigned largest = 0;
    while (largest < core::mm::kMaxOrder && f.frames->alloc({.order = largest + 1}).ok()) {
        ++largest;
    }
    EXPECT_GE(largest, 9u);
}

TEST(FrameAllocator, RebasingOnAnUnmovedDirectMapChangesNothing) {
    FramesOnMachine f(small_map());
    f.init();
    PhysAddr a = f.frames->alloc({.order = 3}).value();
    f.frames->rebase_direct_map();
    EXPECT_EQ(f.frames->audit(), nullptr);
    EXPECT_TRUE(f.frames->free(a, 3).ok());
    EXPECT_EQ(f.frames->free(a, 3).error(), Error::DoubleFree);
}

TEST(LevelBitmap, FindsTheNextSetBitAcrossLevelsAndMoves) {
    constexpr uint64_t kBits = 300000;
    std::vector<uint64_t> words(core::mm::LevelBitmap::words_needed(kBits));
    core::mm::LevelBitmap b;
    b.init(words.data(), kBits);
    EXPECT_EQ(b.find_next(0), core::mm::LevelBitmap::kNone);
    for (uint64_t i : {5u, 64u, 4095u, 4096u, 262143u, 299999u}) {
        b.set(i);
    }
    EXPECT_EQ(b.find_next(0), 5u);
    EXPECT_EQ(b.find_next(6), 64u);
    EXPECT_EQ(b.find_next(65), 4095u);
    EXPECT_EQ(b.find_next(4097), 262143u);
    EXPECT_EQ(b.find_next(262144), 299999u);
    b.clear(262143);
    EXPECT_EQ(b.find_next(4097), 299999u);
    EXPECT_EQ(b.count(), 5u);
    EXPECT_TRUE(b.summaries_consistent());
    // Moved elsewhere, it reads the copy.
    std::vector<uint64_t> moved = words;
    b.rebase(reinterpret_cast<intptr_t>(moved.data()) - reinterpret_cast<intptr_t>(words.data()));
    std::fill(words.begin(), words.end(), 0);
    EXPECT_EQ(b.find_next(4097), 299999u);
    EXPECT_EQ(b.count(), 5u);
}

TEST(FrameAllocator, InjectedFaultsAreOutOfMemory) {
    FramesOnMachine f(small_map(), 1, 1.0);
    f.init();
    FrameStats before = f.frames->stats();
    EXPECT_EQ(f.frames->alloc_frame(FrameOwner::Kernel).error(), Error::OutOfMemory);
    EXPECT_EQ(f.frames->alloc({.order = 9}).error(), Error::OutOfMemory);
    EXPECT_EQ(f.frames->alloc({.order = 2, .max = core::mm::kBelow1MiB}).error(),
              Error::OutOfMemory);
    EXPECT_EQ(f.frames->stats().free, before.free);
    EXPECT_EQ(f.machine->events().size(), 3u);
    EXPECT_EQ(f.frames->audit(), nullptr);
}

TEST(FrameAllocator, CachesAreBoundedAndPerCpu) {
    FramesOnMachine f(duet::test::fixture("qemu-q35-2g"), 4);
    f.init();
    std::vector<PhysAddr> frames;
    for (int i = 0; i < 500; ++i) {
        frames.push_back(f.frames->alloc_frame(FrameOwner::Kernel).value());
    }
    // Freed on CPU 3: its cache never holds more than its capacity.
    f.on_cpu(3, [&] {
        for (PhysAddr pa : frames) {
            ASSERT_TRUE(f.frames->free(pa).ok());
        }
    });
    FrameStats s = f.frames->stats();
    EXPECT_LE(s.cached, core::mm::FrameAllocator::kCacheCapacity + 32);
    EXPECT_GT(s.cached, 0u);
    EXPECT_EQ(s.used_by[kKernel], 0u);
    // CPU 3 now allocates from its own cache: the most recently freed frame first.
    f.on_cpu(3, [&] {
        auto r = f.frames->alloc_frame(FrameOwner::Kernel);
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(r.value(), frames.back());
    });
    EXPECT_TRUE(f.frames->accounting_holds());
    EXPECT_EQ(f.frames->audit(), nullptr);
}

TEST(FrameAllocator, MetadataIsUnderATenthOfAPercent) {
    struct Case {
        const char* name;
        std::vector<firmware::E820Entry> map;
    };
    auto tib = duet::test::q35_map(TiB);
    std::vector<Case> cases = {
        {"qemu-q35-2g", duet::test::fixture("qemu-q35-2g")},
        {"qemu-q35-2g-kvm", duet::test::fixture("qemu-q35-2g-kvm")},
        {"qemu-q35-8g", duet::test::fixture("qemu-q35-8g")},
        {"qemu-pc-2g", duet::test::fixture("qemu-pc-2g")},
        {"1 TiB", tib},
    };
    for (const auto& c : cases) {
        auto n = duet::test::normalize_e820(c.map, {{0, 4096}});
        uint64_t managed = n.summary.usable_frames * 4096;
        uint64_t meta = core::mm::FrameAllocator::metadata_bytes(n.areas.data(), n.areas.size());
        EXPECT_LT(meta * 1000, managed) << c.name << ": " << meta << " bytes for " << managed;
        // About 11 bits per frame from the lowest to the highest usable frame (0.034% of it):
        // a bit for held blocks, two for the free bitmaps and their summaries, a byte of info.
        uint64_t span = (n.areas.back().end.value() >> 12) -
                        ((n.areas.front().base.value() >> 12) & ~((uint64_t{1} << 18) - 1));
        EXPECT_LE(meta * 8, span * 111 / 10 + 8 * 4096) << c.name;
        std::printf("metadata for %-16s %10llu bytes, %.4f%% of %llu managed bytes\n", c.name,
                    static_cast<unsigned long long>(meta),
                    100.0 * static_cast<double>(meta) / static_cast<double>(managed),
                    static_cast<unsigned long long>(managed));
    }
}

TEST(FrameAllocator, ATerabyteMachine) {
    FramesOnMachine f(duet::test::q35_map(TiB));
    f.init();
    FrameStats s = f.frames->stats();
    EXPECT_EQ(s.total, f.map.summary.ram_frames);
    EXPECT_EQ(s.used, metadata_frames(f));
    EXPECT_LT(s.metadata_bytes * 1000, s.total * 4096);
    auto g = f.frames->alloc({.order = 18});
    ASSERT_TRUE(g.ok());
    EXPECT_GE(g.value().value(), 4 * GiB);
    ASSERT_TRUE(f.frames->free(g.value(), 18).ok());
    EXPECT_TRUE(f.frames->accounting_holds());
}

// --- One rule each: zones, the per-CPU caches' thresholds, accounting. ---

// No block crosses a zone boundary: freeing never merges a block with its buddy in the next
// zone. Only the 1 MiB boundary can be reached (the 4 GiB one lies above the largest block's
// alignment), and only once all of [0, 2 MiB) is free, which the boot path never hands over:
// here the allocator is given that range directly.
TEST(FrameAllocator, MergingStopsAtAZoneBoundary) {
    // RAM from 0 on, in two entries as the BIOS loader wants: below 640 KiB, and the rest.
    FramesOnMachine f({{0, 0xa0000, 1, 1}, {0xa0000, 64 * MiB - 0xa0000, 1, 1}});
    // Free blocks keep their links in their first frame, also where the firmware's read-only
    // pages were.
    f.machine->ram().protect_read_write(0, 8 * MiB);
    std::vector<core::mm::FrameArea> areas = {{PhysAddr(0), PhysAddr(8 * MiB)}};
    f.bump = std::make_unique<core::mm::BumpAllocator>();
    ASSERT_TRUE(f.bump->init(areas.data(), areas.size()).ok());
    // [1 MiB, 2 MiB) as single frames, so that the allocator's metadata goes above it.
    ASSERT_EQ(f.bump->alloc(256, FrameOwner::BootData).value(), PhysAddr(1 * MiB));
    ASSERT_TRUE(f.frames->init(areas.data(), areas.size(), *f.bump, 0).ok());
    for (uint64_t pa = 1 * MiB; pa < 2 * MiB; pa += 4096) {
        ASSERT_TRUE(f.frames->free(PhysAddr(pa)).ok());
    }
    // A request that cannot be met first drains the caches, so that the frames just freed
    // merge into [1 MiB, 2 MiB); [0, 1 MiB) is free since the hand-over. Neither may merge
    // with the other.
    auto across = f.frames->alloc({.order = 9, .max = PhysAddr(2 * MiB)});
    ASSERT_FALSE(across.ok()) << "a 2 MiB block at " << std::hex << across.value().value();
    EXPECT_EQ(across.error(), Error::OutOfMemory);
    auto low = f.frames->alloc({.order = 8, .max = core::mm::kBelow1MiB});
    auto high = f.frames->alloc({.order = 8, .max = PhysAddr(2 * MiB)});
    ASSERT_TRUE(low.ok() && high.ok());
    EXPECT_EQ(low.value(), PhysAddr(0));
    EXPECT_EQ(high.value(), PhysAddr(1 * MiB));
    EXPECT_EQ(f.frames->audit(), nullptr);
}

// An empty per-CPU cache takes a batch of kCacheBatch frames at once and hands all of them
// out before it goes back to the buddy allocator.
TEST(FrameAllocator, AnEmptyCacheRefillsWithABatch) {
    constexpr uint64_t kBatch = core::mm::FrameAllocator::kCacheBatch;
    FramesOnMachine f(small_map());
    f.init();
    EXPECT_EQ(f.frames->stats().cached, 0u);
    for (uint64_t round = 0; round < 2; ++round) {
        for (uint64_t i = 0; i < kBatch; ++i) {
            ASSERT_TRUE(f.frames->alloc_frame(FrameOwner::Kernel).ok());
            EXPECT_EQ(f.frames->stats().cached, kBatch - 1 - i) << "round " << round;
        }
    }
    EXPECT_EQ(f.frames->audit(), nullptr);
}

// Freed single frames stay in the freeing CPU's cache until it holds kCacheCapacity; the next
// free gives the oldest kCacheBatch back to the buddy allocator, and the newest stay.
TEST(FrameAllocator, AFullCacheGivesBackItsOldestBatch) {
    constexpr uint64_t kCapacity = core::mm::FrameAllocator::kCacheCapacity;
    constexpr uint64_t kBatch = core::mm::FrameAllocator::kCacheBatch;
    FramesOnMachine f(small_map());
    f.init();
    std::vector<PhysAddr> frames;
    for (uint64_t i = 0; i <= kCapacity; ++i) {
        frames.push_back(f.frames->alloc_frame(FrameOwner::Kernel).value());
    }
    const uint64_t cpu0 = f.frames->stats().cached; // what CPU 0's cache has left
    f.on_cpu(1, [&] {
        for (uint64_t i = 0; i < kCapacity; ++i) {
            ASSERT_TRUE(f.frames->free(frames[i]).ok());
        }
        EXPECT_EQ(f.frames->stats().cached, cpu0 + kCapacity);
        ASSERT_TRUE(f.frames->free(frames[kCapacity]).ok());
        EXPECT_EQ(f.frames->stats().cached, cpu0 + kCapacity - kBatch + 1);
        // What stays is the newest, handed out newest first.
        for (uint64_t i = kCapacity + 1; i-- > kBatch;) {
            EXPECT_EQ(f.frames->alloc_frame(FrameOwner::Kernel).value(), frames[i]) << i;
        }
    });
    EXPECT_EQ(f.frames->stats().cached, cpu0);
    EXPECT_EQ(f.frames->audit(), nullptr);
}

// A cache holds at most kHugeCacheCapacity 2 MiB blocks, taken from the buddy allocator and
// given back one at a time.
TEST(FrameAllocator, TheCacheOf2MiBBlocksIsSmall) {
    constexpr uint64_t kHuge = core::mm::FrameAllocator::kHugeCacheCapacity;
    FramesOnMachine f(duet::test::fixture("qemu-q35-2g"));
    f.init();
    std::vector<PhysAddr> blocks;
    for (uint64_t i = 0; i <= kHuge; ++i) {
        blocks.push_back(f.frames->alloc({.order = 9}).value());
        EXPECT_EQ(f.frames->stats().cached, 0u) << "a refill takes one block";
    }
    for (uint64_t i = 0; i <= kHuge; ++i) {
        ASSERT_TRUE(f.frames->free(blocks[i], 9).ok());
        EXPECT_EQ(f.frames->stats().cached, std::min(i + 1, kHuge) * 512) << i;
    }
    // The oldest went back; the others come out newest first.
    for (uint64_t i = kHuge + 1; i-- > 1;) {
        EXPECT_EQ(f.frames->alloc({.order = 9}).value(), blocks[i]) << i;
    }
    EXPECT_EQ(f.frames->audit(), nullptr);
}

// A frame freed on a CPU goes to that CPU's cache: that CPU hands it out next, no other.
TEST(FrameAllocator, EachCpuHasACacheOfItsOwn) {
    FramesOnMachine f(small_map(), 2);
    f.init();
    PhysAddr a = f.frames->alloc_frame(FrameOwner::Kernel).value();
    f.on_cpu(1, [&] { ASSERT_TRUE(f.frames->free(a).ok()); });
    PhysAddr b = f.frames->alloc_frame(FrameOwner::Kernel).value();
    EXPECT_NE(b, a);
    f.on_cpu(1, [&] { EXPECT_EQ(f.frames->alloc_frame(FrameOwner::Kernel).value(), a); });
    EXPECT_EQ(f.frames->audit(), nullptr);
}

// free_frames_hint() counts the frames in the buddy lists and in every per-CPU cache: on a
// quiet machine it is stats().free exactly.
TEST(FrameAllocator, TheFreeFramesHintCountsTheCaches) {
    FramesOnMachine f(small_map(), 2);
    f.init();
    std::vector<PhysAddr> frames;
    for (int i = 0; i < 40; ++i) {
        frames.push_back(f.frames->alloc_frame(FrameOwner::Kernel).value());
    }
    PhysAddr huge = f.frames->alloc({.order = 9}).value();
    f.on_cpu(1, [&] {
        for (int i = 0; i < 20; ++i) {
            ASSERT_TRUE(f.frames->free(frames[i]).ok());
        }
        ASSERT_TRUE(f.frames->free(huge, 9).ok());
    });
    FrameStats s = f.frames->stats();
    EXPECT_GE(s.cached, 512u + 20u);
    EXPECT_EQ(f.frames->free_frames_hint(), s.free);
}

// --- Random sequences against a reference model. ---

struct Model {
    std::map<uint64_t, std::pair<unsigned, FrameOwner>> held; // base -> (order, owner)

    // The held block containing `pa`, if any.
    const std::pair<const uint64_t, std::pair<unsigned, FrameOwner>>* containing(uint64_t pa) {
        auto it = held.upper_bound(pa);
        if (it == held.begin()) {
            return nullptr;
        }
        --it;
        return pa < it->first + (uint64_t{4096} << it->second.first) ? &*it : nullptr;
    }
    bool overlaps(uint64_t base, uint64_t bytes) {
        auto it = held.lower_bound(base);
        if (it != held.end() && it->first < base + bytes) {
            return true;
        }
        return containing(base) != nullptr;
    }
};

TEST(FrameAllocator, RandomSequencesAgreeWithAReferenceModel) {
    for (uint64_t seed : {1u, 2u, 3u}) {
        FramesOnMachine f(small_map(), 3);
        f.init();
        const uint64_t free_at_start = f.frames->stats().free;
        Model model;
        std::mt19937_64 rng(seed);
        uint64_t held_frames = 0;
        uint32_t cpu = 0;
        for (int step = 0; step < 6000; ++step) {
            if (rng() % 50 == 0) {
                cpu = static_cast<uint32_t>(rng() % 3);
            }
            unsigned op = static_cast<unsigned>(rng() % 100);
            f.on_cpu(cpu, [&] {
                if (op < 45) { // allocate
                    FrameRequest req;
                    req.owner = static_cast<FrameOwner>(rng() % core::mm::kFrameOwnerCount);
                    req.order = rng() % 3 == 0 ? static_cast<unsigned>(rng() % 11) : 0;
                    if (rng() % 4 == 0) {
                        req.align = uint64_t{4096} << (rng() % 12);
                    }
                    bool ranged = rng() % 4 == 0;
                    if (ranged) {
                        uint64_t a = rng() % (64 * MiB);
                        uint64_t b = rng() % (64 * MiB);
                        req.min = PhysAddr(std::min(a, b));
                        req.max = PhysAddr(std::max(a, b) + 1);
                    }
                    auto r = req.order == 0 && req.align == 0 && !ranged && rng() % 2 == 0
                                 ? f.frames->alloc_frame(req.owner)
                                 : f.frames->alloc(req);
                    if (!r.ok()) {
                        ASSERT_EQ(r.error(), Error::OutOfMemory);
                        return;
                    }
                    uint64_t pa = r.value().value();
                    uint64_t bytes = uint64_t{4096} << req.order;
                    ASSERT_TRUE(f.usable(pa, bytes)) << std::hex << pa;
                    ASSERT_FALSE(model.overlaps(pa, bytes)) << std::hex << pa;
                    ASSERT_EQ(pa % std::max(bytes, req.align), 0u);
                    ASSERT_GE(pa, req.min.value());
                    ASSERT_LE(pa + bytes - 1, req.max.value() - 1);
                    model.held[pa] = {req.order, req.owner};
                    held_frames += bytes / 4096;
                } else if (op < 85 && !model.held.empty()) { // free a held block
                    auto it = model.held.begin();
                    std::advance(it, static_cast<long>(rng() % model.held.size()));
                    auto [pa, what] = *it;
                    if (what.first > 0 && rng() % 10 == 0) {
                        ASSERT_EQ(f.frames->free(PhysAddr(pa), what.first - 1).error(),
                                  Error::InvalidArgument);
                    }
                    ASSERT_TRUE(f.frames->free(PhysAddr(pa), what.first).ok());
                    held_frames -= uint64_t{1} << what.first;
                    model.held.erase(it);
                } else { // free something that is not a held block
                    uint64_t pa = (rng() % (80 * MiB)) & ~uint64_t{4095};
                    if (model.held.count(pa) != 0) {
                        return;
                    }
                    Error expect = Error::ForeignAddress;
                    uint64_t meta = f.frames->metadata_base().value();
                    bool is_meta = pa >= meta && pa < meta + metadata_frames(f) * 4096;
                    if (model.containing(pa) == nullptr && f.usable(pa, 4096) && !is_meta) {
                        expect = Error::DoubleFree;
                    }
                    ASSERT_EQ(f.frames->free(PhysAddr(pa)).error(), expect) << std::hex << pa;
                }
            });
            if (HasFatalFailure()) {
                FAIL() << "seed " << seed << " step " << step;
            }
            if (step % 1000 == 999) {
                ASSERT_EQ(f.frames->audit(), nullptr) << "seed " << seed << " step " << step;
                FrameStats s = f.frames->stats();
                ASSERT_EQ(s.free, free_at_start - held_frames);
                uint64_t by_owner[core::mm::kFrameOwnerCount] = {};
                for (auto& [pa, what] : model.held) {
                    by_owner[static_cast<size_t>(what.second)] += uint64_t{1} << what.first;
                }
                by_owner[kMeta] += metadata_frames(f);
                for (size_t o = 0; o < core::mm::kFrameOwnerCount; ++o) {
                    ASSERT_EQ(s.used_by[o], by_owner[o]) << "owner " << o;
                }
            }
        }
        for (auto& [pa, what] : model.held) {
            ASSERT_TRUE(f.frames->free(PhysAddr(pa), what.first).ok());
        }
        EXPECT_EQ(f.frames->stats().free, free_at_start);
        EXPECT_EQ(f.frames->audit(), nullptr);
    }
}

TEST(FrameAllocator, TheKernelsAllocatorAfterBoot) {
    hal_sim::MachineConfig config;
    config.cpus = 2;
    config.memory = duet::test::fixture("qemu-q35-2g");
    hal_sim::Machine m(config);
    ASSERT_EQ(m.run().verdict, hal_sim::Verdict::Success);
    // What the simulator checks at the end of a run.
    EXPECT_TRUE(core::mm::check_frame_accounting());
    EXPECT_EQ(core::mm::frames().audit(), nullptr);
}

} // namespace
