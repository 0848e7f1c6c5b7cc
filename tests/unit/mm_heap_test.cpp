// The kernel heap: size classes, whole pages, blocks of their own, 1 MiB growth from the frame
// allocator, per-CPU caches, double-free and use-after-free detection, statistics, and a
// randomized sequence checked for overlap and corruption.

#include "vm_support.hpp"

#include <core/mm/heap.hpp>
#include <core/mm/physical_memory.hpp>
#include <hal/mmu.hpp>
#include <hal_sim/machine.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using core::Error;
using core::mm::FrameOwner;
using core::mm::FrameSource;
using core::mm::Heap;
using duet::test::FramesOnMachine;
using duet::test::KiB;
using duet::test::MiB;

struct HeapTest : ::testing::Test {
    FramesOnMachine f{duet::test::fixture("qemu-q35-2g"), 2};
    std::unique_ptr<Heap> heap = std::make_unique<Heap>();

    void SetUp() override {
        f.init();
        ASSERT_TRUE(heap->init(FrameSource(*f.frames)).ok());
    }
    void TearDown() override {
        heap->destroy();
        EXPECT_EQ(duet::test::frames_used_by(*f.frames, FrameOwner::Heap), 0u);
    }

    void* alloc(size_t bytes, size_t align = 16) {
        auto r = heap->alloc(bytes, align);
        EXPECT_TRUE(r.ok()) << bytes << ": " << core::describe(r.error());
        return r.ok() ? r.value() : nullptr;
    }
    void free(void* p) {
        auto r = heap->free(p);
        EXPECT_TRUE(r.ok()) << core::describe(r.error());
    }
    uint64_t heap_frames() { return duet::test::frames_used_by(*f.frames, FrameOwner::Heap); }
};

TEST_F(HeapTest, SmallObjectsComeFromSizeClasses) {
    std::vector<std::pair<uint8_t*, size_t>> live;
    for (size_t bytes = 0; bytes <= Heap::kMaxSmall; bytes += 1 + bytes / 16) {
        auto* p = static_cast<uint8_t*>(alloc(bytes));
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u) << bytes;
        size_t usable = heap->usable_size(p);
        EXPECT_GE(usable, bytes == 0 ? 1 : bytes);
        EXPECT_LE(usable, bytes <= 128 ? bytes + 16 : bytes + bytes / 4 + 16) << bytes;
        std::memset(p, static_cast<int>(bytes & 0xFF), usable);
        live.emplace_back(p, usable);
    }
    for (auto [p, usable] : live) {
        for (size_t i = 0; i < usable; ++i) {
            ASSERT_EQ(p[i], p[0]);
        }
        free(p);
    }
    EXPECT_TRUE(heap->audit());
    auto s = heap->stats();
    EXPECT_EQ(s.chunks, 1u);
    EXPECT_EQ(s.allocs, live.size());
    EXPECT_EQ(s.frees, live.size());
    // The one object left is CPU 0's cache of free objects, a heap object itself.
    uint64_t in_use = 0;
    for (const auto& c : s.classes) {
        in_use += c.in_use;
    }
    EXPECT_EQ(in_use, 1u);
}

TEST_F(HeapTest, LargeObjectsAreWholePagesAndHugeOnesBlocksOfTheirOwn) {
    void* page = alloc(Heap::kMaxSmall + 1);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(page) % 4096, 0u);
    EXPECT_EQ(heap->usable_size(page), 4096u);
    void* big = alloc(100 * KiB);
    EXPECT_EQ(heap->usable_size(big), 100 * KiB);
    auto s = heap->stats();
    EXPECT_EQ(s.large_pages, 1u + 25u);
    EXPECT_EQ(s.chunks, 1u);
    EXPECT_EQ(heap_frames(), 256u);

    // Larger than what a chunk has room for: a block of its own.
    void* huge = alloc(3 * MiB);
    std::memset(huge, 0x5A, 3 * MiB);
    EXPECT_GE(heap->usable_size(huge), 3 * MiB);
    s = heap->stats();
    EXPECT_EQ(s.huge_count, 1u);
    EXPECT_EQ(s.huge_bytes, 4 * MiB);
    EXPECT_EQ(heap_frames(), 256u + 1024u);
    free(huge);
    EXPECT_EQ(heap_frames(), 256u);
    free(big);
    free(page);
    EXPECT_EQ(heap->stats().large_pages, 0u);
    EXPECT_TRUE(heap->audit());
}

TEST_F(HeapTest, AlignmentUpToAPage) {
    for (size_t align : {32u, 64u, 256u, 1024u, 4096u}) {
        for (size_t bytes : {1u, 40u, 100u, 3000u}) {
            void* p = alloc(bytes, align);
            EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u) << bytes << " @ " << align;
            EXPECT_GE(heap->usable_size(p), bytes);
            free(p);
        }
    }
    EXPECT_EQ(heap->alloc(16, 48).error(), Error::InvalidArgument);
    EXPECT_EQ(heap->alloc(16, 8192).error(), Error::InvalidArgument);
}

TEST_F(HeapTest, GrowsInMiBChunksAndGivesThemBack) {
    EXPECT_EQ(heap_frames(), 0u); // nothing until the first allocation
    std::vector<void*> pages;
    for (int i = 0; i < 1000; ++i) {
        pages.push_back(alloc(4096));
    }
    // 1000 pages, 255 usable pages per chunk.
    auto s = heap->stats();
    EXPECT_EQ(s.chunks, 4u);
    EXPECT_EQ(heap_frames(), s.chunks * 256);
    EXPECT_EQ(s.bytes_from_frames(), s.chunks * MiB);
    for (void* p : pages) {
        free(p);
    }
    // Empty chunks go back, but one chunk's worth of free pages stays.
    s = heap->stats();
    EXPECT_LE(s.chunks, 2u);
    EXPECT_GE(s.chunks_returned, 2u);
    EXPECT_EQ(heap_frames(), s.chunks * 256);
    EXPECT_TRUE(heap->audit());
}

TEST_F(HeapTest, ObjectsFreedOnAnotherCpuAndCachesDrain) {
    std::vector<void*> objs;
    for (int i = 0; i < 500; ++i) {
        objs.push_back(alloc(64));
    }
    f.on_cpu(1, [&] {
        for (void* p : objs) {
            EXPECT_TRUE(heap->free(p).ok());
        }
    });
    auto s = heap->stats();
    EXPECT_EQ(s.classes[3].size, 64u);
    EXPECT_EQ(s.classes[3].in_use, 0u);
    EXPECT_GT(s.classes[3].cached, 0u);
    EXPECT_LE(s.classes[3].cached, 2 * 64u); // two CPUs, at most 64 each
    EXPECT_TRUE(heap->audit());
    heap->drain_caches();
    s = heap->stats();
    EXPECT_EQ(s.classes[3].cached, 0u);
    // Only one (partial) slab stays per class once everything is back.
    EXPECT_LE(s.classes[3].slabs, 1u);
    EXPECT_TRUE(heap->audit());
}

// A CPU whose per-CPU cache cannot be had (no memory for it) still allocates and frees,
// straight from the slabs under the lock; a class with no partial slab then fails cleanly.
TEST_F(HeapTest, ACpuWithoutACacheUsesTheSlabsDirectly) {
    void* first = alloc(16); // CPU 0's cache, and a partial slab of class 16
    // Take every frame there is, then every page left in the heap's chunk.
    std::vector<std::pair<hal::PhysAddr, unsigned>> taken;
    for (int order = 18; order >= 0; --order) {
        core::mm::FrameRequest req{.order = static_cast<unsigned>(order)};
        for (auto r = f.frames->alloc(req); r.ok(); r = f.frames->alloc(req)) {
            taken.emplace_back(r.value(), static_cast<unsigned>(order));
        }
    }
    std::vector<void*> pages;
    for (size_t bytes : {size_t{64} * KiB, size_t{4} * KiB}) {
        for (auto r = heap->alloc(bytes); r.ok(); r = heap->alloc(bytes)) {
            pages.push_back(r.value());
        }
    }
    ASSERT_EQ(heap->stats().free_pages, 0u);
    // A per-CPU cache is an object of class 768: take the rest of that class's slab too.
    std::vector<void*> caches;
    for (auto r = heap->alloc(sizeof(void*) * 96); r.ok(); r = heap->alloc(sizeof(void*) * 96)) {
        caches.push_back(r.value());
    }
    ASSERT_FALSE(caches.empty());
    uint64_t failures = heap->stats().failures;
    f.on_cpu(1, [&] {
        auto r = heap->alloc(16);
        ASSERT_TRUE(r.ok()) << core::describe(r.error());
        EXPECT_NE(r.value(), first);
        auto s = heap->stats();
        EXPECT_EQ(s.classes[0].cached, 31u); // CPU 0's: half a list, less the one handed out
        EXPECT_EQ(s.classes[0].in_use, 2u);
        EXPECT_TRUE(heap->free(r.value()).ok());
        EXPECT_EQ(heap->stats().classes[0].in_use, 1u);
        EXPECT_EQ(heap->stats().classes[0].cached, 31u); // not into anyone's list
        // Class 48 has no slab and there is no page for one.
        EXPECT_EQ(heap->alloc(48).error(), Error::OutOfMemory);
    });
    // Failures count alloc() calls that failed: the class 48 one, not the cache's.
    EXPECT_EQ(heap->stats().failures, failures + 1);
    EXPECT_TRUE(heap->audit());
    for (void* p : pages) {
        free(p);
    }
    for (void* p : caches) {
        free(p);
    }
    free(first);
    for (auto [pa, order] : taken) {
        ASSERT_TRUE(f.frames->free(pa, order).ok());
    }
    // With memory back, CPU 1 gets its cache.
    f.on_cpu(1, [&] {
        void* p = alloc(16);
        free(p);
        EXPECT_EQ(heap->stats().classes[0].cached, 32u + 32u); // half a list on each CPU
    });
    EXPECT_TRUE(heap->audit());
}

TEST_F(HeapTest, BadFreesAreRefused) {
    auto* obj = static_cast<uint8_t*>(alloc(48));
    EXPECT_EQ(heap->free(obj + 16).error(), Error::ForeignAddress); // inside an object
    void* page = alloc(8192);
    EXPECT_EQ(heap->free(static_cast<uint8_t*>(page) + 4096).error(), Error::ForeignAddress);
    free(page);
    EXPECT_EQ(heap->free(page).error(), Error::DoubleFree); // every build: the pages are free
    // Memory the heap never handed out: a frame of the frame allocator.
    auto frame = f.frames->alloc_frame(FrameOwner::Kernel).value();
    std::memset(hal::phys_to_virt(frame), 0, 4096);
    EXPECT_EQ(heap->free(hal::phys_to_virt(frame)).error(), Error::ForeignAddress);
    ASSERT_TRUE(f.frames->free(frame).ok());
    free(obj);
#ifdef DUET_DEBUG
    EXPECT_EQ(heap->free(obj).error(), Error::DoubleFree);
#endif
    EXPECT_TRUE(heap->audit());
}

TEST_F(HeapTest, RandomSequencesNeverOverlapOrCorrupt) {
    std::mt19937_64 rng(99);
    struct Block {
        size_t bytes;
        uint8_t fill;
    };
    std::map<uint8_t*, Block> live;
    auto check = [](uint8_t* p, const Block& b) {
        for (size_t i = 0; i < b.bytes; i += 1 + i / 8) {
            if (p[i] != b.fill) {
                return false;
            }
        }
        return b.bytes == 0 || p[b.bytes - 1] == b.fill;
    };
    for (int step = 0; step < 30000; ++step) {
        if (live.empty() || rng() % 100 < 55) {
            unsigned pick = rng() % 1000;
            size_t bytes = pick < 900   ? rng() % 257
                           : pick < 990 ? rng() % 20000
                                        : rng() % (2 * MiB);
            auto* p = static_cast<uint8_t*>(alloc(bytes));
            ASSERT_NE(p, nullptr);
            auto next = live.lower_bound(p);
            if (next != live.end()) {
                ASSERT_LE(p + bytes, next->first) << "overlaps the next block";
            }
            if (next != live.begin()) {
                auto prev = std::prev(next);
                ASSERT_LE(prev->first + prev->second.bytes, p) << "overlaps the previous block";
            }
            Block b{bytes, static_cast<uint8_t>(rng())};
            std::memset(p, b.fill, bytes);
            live[p] = b;
        } else {
            auto it = live.begin();
            std::advance(it, static_cast<long>(rng() % live.size()));
            ASSERT_TRUE(check(it->first, it->second));
            free(it->first);
            live.erase(it);
        }
        if (step % 5000 == 0) {
            ASSERT_TRUE(heap->audit()) << "step " << step;
        }
    }
    for (auto& [p, b] : live) {
        ASSERT_TRUE(check(p, b));
        free(p);
    }
    heap->drain_caches();
    ASSERT_TRUE(heap->audit());
    auto s = heap->stats();
    EXPECT_EQ(s.allocs, s.frees);
    EXPECT_EQ(s.large_pages, 0u);
    EXPECT_EQ(s.huge_count, 0u);
    uint64_t objects = 0;
    for (const auto& c : s.classes) {
        objects += c.in_use;
    }
    EXPECT_EQ(objects, 1u); // CPU 0's cache
}

// --- One rule each: size classes, slabs, per-CPU lists, page runs, poisoning, faults. ---

// A class's slab is the fewest pages (1, 2, 4 or 8) that waste at most an eighth of
// themselves, and every slab of the class is that size.
TEST_F(HeapTest, ASlabIsTheFewestPagesThatWasteAnEighthAtMost) {
    auto waste = [](uint64_t pages, uint64_t size) { return pages * 4096 % size; };
    for (const auto& c : heap->stats().classes) {
        free(alloc(c.size));
    }
    auto s = heap->stats();
    uint64_t pages = 0;
    for (const auto& c : s.classes) {
        ASSERT_TRUE(c.slab_pages == 1 || c.slab_pages == 2 || c.slab_pages == 4) << c.size;
        EXPECT_LE(waste(c.slab_pages, c.size) * 8, c.slab_pages * 4096) << c.size;
        for (uint64_t fewer = 1; fewer < c.slab_pages; fewer *= 2) {
            EXPECT_GT(waste(fewer, c.size) * 8, fewer * 4096) << c.size;
        }
        EXPECT_GT(c.slabs, 0u);
        pages += c.slabs * c.slab_pages;
    }
    EXPECT_EQ(s.slab_pages, pages);
    EXPECT_TRUE(heap->audit());
}

// A CPU keeps up to 64 free objects of a class of up to 256 bytes, 32 up to 1 KiB and 16 of
// the larger ones; the free that goes past that gives half of them back to the slabs.
TEST_F(HeapTest, ACpuKeepsAFewFreeObjectsPerClassThenGivesHalfBack) {
    auto cached = [&](size_t size) {
        for (const auto& c : heap->stats().classes) {
            if (c.size == size) {
                return c.cached;
            }
        }
        return ~uint64_t{0};
    };
    // CPU 1's cache, with nothing in the lists of the classes below.
    f.on_cpu(1, [&] { free(alloc(48)); });
    const std::pair<size_t, uint64_t> cases[] = {{16, 64},   {256, 64},  {320, 32},
                                                 {1024, 32}, {1280, 16}, {2048, 16}};
    for (auto [size, capacity] : cases) {
        std::vector<void*> objs;
        for (uint64_t i = 0; i <= capacity; ++i) {
            objs.push_back(alloc(size));
        }
        const uint64_t cpu0 = cached(size);
        f.on_cpu(1, [&] {
            for (uint64_t i = 0; i < capacity; ++i) {
                free(objs[i]);
            }
            EXPECT_EQ(cached(size), cpu0 + capacity) << size;
            free(objs[capacity]);
            EXPECT_EQ(cached(size), cpu0 + capacity / 2 + 1) << size;
        });
    }
    EXPECT_TRUE(heap->audit());
}

// An emptied slab goes back to its chunk unless it is its class's last partial slab: that one
// stays, so that a class in occasional use does not cut a new slab each time.
TEST_F(HeapTest, AClassKeepsItsLastEmptySlab) {
    std::vector<void*> objs;
    for (int i = 0; i < 200; ++i) {
        objs.push_back(alloc(64)); // 64 to a one-page slab: four slabs
    }
    EXPECT_EQ(heap->stats().classes[3].slabs, 4u);
    for (void* p : objs) {
        free(p);
    }
    heap->drain_caches();
    auto s = heap->stats();
    EXPECT_EQ(s.classes[3].size, 64u);
    EXPECT_EQ(s.classes[3].in_use + s.classes[3].cached, 0u);
    EXPECT_EQ(s.classes[3].slabs, 1u);
    EXPECT_TRUE(heap->audit());
}

// Up to a chunk's 255 usable pages come from a chunk; one byte more is a block of its own.
TEST_F(HeapTest, UpTo255PagesComeFromAChunk) {
    void* most = alloc(255 * 4096);
    auto s = heap->stats();
    EXPECT_EQ(s.large_pages, 255u);
    EXPECT_EQ(s.huge_count, 0u);
    void* more = alloc(255 * 4096 + 1);
    s = heap->stats();
    EXPECT_EQ(s.large_pages, 255u);
    EXPECT_EQ(s.huge_count, 1u);
    free(more);
    free(most);
    EXPECT_TRUE(heap->audit());
}

// A block of its own has a header page in front of the allocation: 4 MiB asked is an 8 MiB
// block, all 4 MiB of it usable.
TEST_F(HeapTest, AHugeBlockHasRoomForItsHeaderPage) {
    auto* p = static_cast<uint8_t*>(alloc(4 * MiB));
    ASSERT_GE(heap->usable_size(p), 4 * MiB);
    EXPECT_EQ(heap->stats().huge_bytes, 8 * MiB);
    p[0] = 1;
    p[4 * MiB - 1] = 1;
    free(p);
    EXPECT_EQ(heap_frames(), 0u);
}

#ifdef DUET_DEBUG
// Debug builds fill freed pages with the poison byte, so that a read after free finds the
// poison instead of the old contents.
TEST_F(HeapTest, DebugBuildsPoisonFreedPages) {
    auto* p = static_cast<uint8_t*>(alloc(3 * 4096));
    std::memset(p, 0, 3 * 4096);
    free(p);
    for (size_t i = 0; i < 3 * 4096; ++i) {
        ASSERT_EQ(p[i], 0xDB) << i;
    }
}
#endif

// Injected heap faults (hal::FaultPoint::HeapAlloc) are asked at every refill of a CPU's list:
// with every refill failing, no small object can be had.
TEST(HeapFaults, EveryRefillOfACpusListIsAFaultPoint) {
    hal_sim::MachineConfig config;
    config.memory = duet::test::fixture("qemu-q35-2g");
    config.faults.heap_alloc = 1.0;
    hal_sim::Machine m(config);
    hal_sim::Machine::CpuScope scope(m, 0);
    core::mm::init_physical_memory(*m.boot_info().bootboot);
    Heap heap;
    ASSERT_TRUE(heap.init(FrameSource(core::mm::frames())).ok());
    EXPECT_EQ(heap.alloc(64).error(), Error::OutOfMemory);
    EXPECT_EQ(heap.alloc(2000).error(), Error::OutOfMemory);
    EXPECT_EQ(heap.stats().failures, 2u);
    heap.destroy();
}

// ... and never on the fast path: with half the refills failing, every object of a refilled
// list is handed out.
TEST(HeapFaults, TheFastPathIsNoFaultPoint) {
    hal_sim::MachineConfig config;
    config.memory = duet::test::fixture("qemu-q35-2g");
    config.faults.heap_alloc = 0.5;
    hal_sim::Machine m(config);
    hal_sim::Machine::CpuScope scope(m, 0);
    core::mm::init_physical_memory(*m.boot_info().bootboot);
    Heap heap;
    ASSERT_TRUE(heap.init(FrameSource(core::mm::frames())).ok());
    int tries = 1;
    while (!heap.alloc(64).ok()) {
        ASSERT_LT(++tries, 100);
    }
    // A list of 64 is refilled with 32 objects: the other 31 come from the list.
    for (int i = 0; i < 31; ++i) {
        EXPECT_TRUE(heap.alloc(64).ok()) << i;
    }
    EXPECT_EQ(heap.stats().failures, static_cast<uint64_t>(tries - 1));
    heap.destroy();
}

#ifdef DUET_DEBUG
TEST(HeapDeathTest, AWriteAfterFreeIsCaughtWhenTheObjectIsHandedOutAgain) {
    EXPECT_DEATH(
        {
            FramesOnMachine f(duet::test::fixture("qemu-q35-2g"), 1);
            f.machine->com1().set_sink([](std::string_view, std::string_view line) {
                std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
            });
            f.init();
            Heap heap;
            (void)heap.init(FrameSource(*f.frames));
            auto* p = static_cast<uint64_t*>(heap.alloc(96).value());
            (void)heap.free(p);
            p[5] = 42;            // after the free
            (void)heap.alloc(96); // the same object, from this CPU's cache
        },
        "use after free: object at 0x[0-9a-f]+ \\(96 bytes\\) was written after it was freed");
}
#endif

// --- The kernel's own heap, on a machine with heap faults injected. ---

TEST(KernelHeap, KmallocKfreeStatisticsAndInjectedFaults) {
    hal_sim::MachineConfig config;
    config.memory = duet::test::fixture("qemu-q35-2g");
    config.faults.heap_alloc = 0.5;
    hal_sim::Machine m(config);
    hal_sim::Machine::CpuScope scope(m, 0);
    core::mm::init_physical_memory(*m.boot_info().bootboot);
    ASSERT_TRUE(core::mm::init_heap(FrameSource(core::mm::frames())).ok());
    EXPECT_EQ(core::mm::init_heap(FrameSource(core::mm::frames())).error(), Error::InvalidArgument);
    int failed = 0;
    std::vector<void*> got;
    for (int i = 0; i < 200; ++i) {
        // Large allocations always take the slow path, where faults are injected.
        void* p = core::mm::kmalloc(8192);
        if (p == nullptr) {
            ++failed;
        } else {
            got.push_back(p);
        }
    }
    EXPECT_GT(failed, 50);
    EXPECT_GT(got.size(), 50u);
    for (void* p : got) {
        core::mm::kfree(p);
    }
    core::mm::kfree(nullptr);
    auto s = core::mm::heap().stats();
    EXPECT_EQ(s.failures, static_cast<uint64_t>(failed));
    EXPECT_EQ(s.allocs, got.size());
    core::mm::log_heap_stats();
    std::string out = m.com1().transcript();
    EXPECT_NE(out.find("heap: 1 chunks, 0 B huge; pages: 0 slab, 0 large, 255 free"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find(" allocs, " + std::to_string(got.size()) + " frees, " +
                       std::to_string(failed) + " failed"),
              std::string::npos)
        << out;
    bool injected = false;
    for (const auto& e : m.events()) {
        injected |= e.find("heap_alloc") != std::string::npos;
    }
    EXPECT_TRUE(injected);
}

} // namespace
