// Virtual memory against its baselines, measured in the same run:
//   - map+unmap of one 4 KiB page, tables present, both TLB flushes included (goal: under
//     100 ns median), against the pair it cannot do without: a single-frame alloc+free;
//   - the kernel heap's alloc+free of 16 to 256 bytes, no slower than glibc's malloc+free of the
//     same sizes; and, to show where the heap's time goes in the simulator, the six HAL calls
//     its per-CPU fast path makes per pair (informational).
// Everything runs on a simulated machine (a CPU borrowed with CpuScope), with the kernel's
// boot path for the frame allocator: the BOOTBOOT map normalised, the bump allocator, the
// hand-over.

#include "boot_frames.hpp"
#include "ratios.hpp"

#include <core/mm/frame_allocator.hpp>
#include <core/mm/heap.hpp>
#include <core/mm/page_table.hpp>
#include <hal/cpu.hpp>
#include <hal/irq.hpp>
#include <hal_sim/machine.hpp>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

using core::mm::FrameAllocator;
using core::mm::FrameOwner;
using core::mm::FrameSource;
using duet_bench::Frames;

std::unique_ptr<hal_sim::Machine> machine() {
    hal_sim::MachineConfig config;
    config.cpus = 1;
    config.memory = {
        {0x0, 0x9fc00, 1, 1}, {0x100000, 0x7fee0000, 1, 1}, {0xb0000000, 0x10000000, 2, 1}};
    return std::make_unique<hal_sim::Machine>(config);
}

struct Bench {
    std::unique_ptr<hal_sim::Machine> m = machine();
    hal_sim::Machine::CpuScope scope{*m, 0};
    std::unique_ptr<Frames> frames = std::make_unique<Frames>();
    bool ok = frames->init(*m);
};

// The baseline: the one thing a map of a fresh page always pairs with.
void BM_VmFrameAllocFree(benchmark::State& state) {
    Bench b;
    if (!b.ok) {
        state.SkipWithError("cannot set up the frame allocator");
        return;
    }
    for (auto _ : state) {
        auto r = b.frames->allocator.alloc_frame(FrameOwner::Kernel);
        benchmark::DoNotOptimize(r);
        (void)b.frames->allocator.free(r.value());
    }
}
BENCHMARK(BM_VmFrameAllocFree);

// Map and unmap one 4 KiB page whose tables are present (a neighbour keeps its page table
// alive), flushing the TLB entry after each.
void BM_MapUnmap4KiB(benchmark::State& state) {
    Bench b;
    if (!b.ok) {
        state.SkipWithError("cannot set up the frame allocator");
        return;
    }
    auto mapper = core::mm::Mapper::create(FrameSource(b.frames->allocator)).value();
    hal::VirtAddr va(0x0000'1000'0000'0000);
    hal::PhysAddr frame = b.frames->allocator.alloc_frame(FrameOwner::Kernel).value();
    mapper.map(va.offset(4096), frame, core::mm::PageSize::Size4KiB, {}).value().ignore();
    const core::mm::PageFlags flags{.writable = true};
    uint64_t flushes = b.m->current_cpu().mmu.flushes();
    for (auto _ : state) {
        auto t = mapper.map(va, frame, core::mm::PageSize::Size4KiB, flags);
        t.value().flush();
        auto u = mapper.unmap(va);
        benchmark::DoNotOptimize(u.value().frame);
        u.value().flush.flush();
    }
    state.counters["flushes_per_iter"] =
        static_cast<double>(b.m->current_cpu().mmu.flushes() - flushes) /
        static_cast<double>(state.iterations());
}
BENCHMARK(BM_MapUnmap4KiB);

// Sizes 16 to 256 in a fixed mixed order (the same for both allocators).
std::vector<size_t> mixed_sizes() {
    std::vector<size_t> sizes;
    uint64_t x = 12345;
    for (int i = 0; i < 1024; ++i) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        sizes.push_back(16 + (x >> 33) % 241);
    }
    return sizes;
}

void BM_HeapAllocFree(benchmark::State& state) {
    Bench b;
    auto heap = std::make_unique<core::mm::Heap>();
    if (!b.ok || !heap->init(FrameSource(b.frames->allocator)).ok()) {
        state.SkipWithError("cannot set up the heap");
        return;
    }
    auto size = static_cast<size_t>(state.range(0));
    for (auto _ : state) {
        void* p = heap->alloc(size).value();
        benchmark::DoNotOptimize(p);
        (void)heap->free(p);
    }
    heap->destroy();
}
BENCHMARK(BM_HeapAllocFree)->Arg(16)->Arg(64)->Arg(256);

void BM_GlibcMallocFree(benchmark::State& state) {
    auto size = static_cast<size_t>(state.range(0));
    for (auto _ : state) {
        void* p = std::malloc(size);
        benchmark::DoNotOptimize(p);
        std::free(p);
    }
}
BENCHMARK(BM_GlibcMallocFree)->Arg(16)->Arg(64)->Arg(256);

// Mixed sizes, with 64 objects live at any time (allocations and frees interleave).
// NOTE: DoNotOptimize() goes on a local, not on live[slot]: with the library's "+m,r"
// constraint GCC 12 dropped the store into the array, and every free() got null.
void BM_HeapMixed(benchmark::State& state) {
    Bench b;
    auto heap = std::make_unique<core::mm::Heap>();
    if (!b.ok || !heap->init(FrameSource(b.frames->allocator)).ok()) {
        state.SkipWithError("cannot set up the heap");
        return;
    }
    auto sizes = mixed_sizes();
    void* live[64] = {};
    size_t i = 0;
    for (auto _ : state) {
        size_t slot = i & 63;
        (void)heap->free(live[slot]);
        void* p = heap->alloc(sizes[i & 1023]).value();
        benchmark::DoNotOptimize(p);
        live[slot] = p;
        ++i;
    }
    auto s = heap->stats();
    if (s.frees + 64 < s.allocs || s.chunks != 1) {
        state.SkipWithError("the heap did not reach a steady state");
    }
    for (void* p : live) {
        (void)heap->free(p);
    }
    heap->destroy();
}
BENCHMARK(BM_HeapMixed);

void BM_GlibcMixed(benchmark::State& state) {
    auto sizes = mixed_sizes();
    void* live[64] = {};
    size_t i = 0;
    for (auto _ : state) {
        size_t slot = i & 63;
        std::free(live[slot]);
        void* p = std::malloc(sizes[i & 1023]);
        benchmark::DoNotOptimize(p);
        live[slot] = p;
        ++i;
    }
    for (void* p : live) {
        std::free(p);
    }
}
BENCHMARK(BM_GlibcMixed);

// What the heap's per-CPU fast path pays the simulated HAL per alloc+free pair: interrupts off,
// the CPU's index, interrupts back on, twice. (On bare metal: PUSHF/CLI, a %gs load, POPF.)
void BM_HalIrqCpuPair(benchmark::State& state) {
    Bench b;
    for (auto _ : state) {
        for (int k = 0; k < 2; ++k) {
            hal::IrqFlags f = hal::irq_save();
            uint32_t cpu = hal::cpu_index();
            benchmark::DoNotOptimize(cpu);
            hal::irq_restore(f);
        }
    }
}
BENCHMARK(BM_HalIrqCpuPair);

const int kRatios = [] {
    duet_bench::register_ratio({
        .what = "map+unmap 4 KiB, tables present, flushed / frame alloc+free",
        .numerator = "BM_MapUnmap4KiB",
        .denominator = "BM_VmFrameAllocFree",
        .limit = 4.0,
    });
    for (const char* size : {"16", "64", "256"}) {
        duet_bench::register_ratio({
            .what = std::string("heap alloc+free ") + size + " B / glibc malloc+free",
            .numerator = std::string("BM_HeapAllocFree/") + size,
            .denominator = std::string("BM_GlibcMallocFree/") + size,
            .limit = 1.0,
        });
    }
    duet_bench::register_ratio({
        .what = "simulated HAL calls of a heap alloc+free pair / glibc malloc+free",
        .numerator = "BM_HalIrqCpuPair",
        .denominator = "BM_GlibcMallocFree/64",
        .informational = true,
    });
    return duet_bench::register_ratio({
        .what = "heap mixed 16-256 B, 64 live / glibc, same sequence",
        .numerator = "BM_HeapMixed",
        .denominator = "BM_GlibcMixed",
        .limit = 1.0,
    });
}();

} // namespace
