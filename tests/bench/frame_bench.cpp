// The frame allocator against glibc, and against itself:
//   - a single-frame alloc+free pair (the per-CPU cache path) is no slower than glibc's
//     malloc+free of a 4 KiB block;
//   - a 2 MiB (order 9) alloc+free pair (the buddy path: split from 1 GiB, merge back) stays
//     within 10x the single-frame pair;
//   - initialising the allocator for a 1 TiB machine, reported on its own (goal: under 100 ms
//     of host time), warm (metadata pages already touched) and cold (a fresh machine).
// Each allocator runs on a simulated machine with the kernel's boot path: the BOOTBOOT map
// normalised, the bump allocator, the hand-over.

#include "boot_frames.hpp"
#include "ratios.hpp"

#include <core/mm/frame_allocator.hpp>
#include <hal_sim/machine.hpp>

#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <vector>

namespace {

using core::mm::FrameAllocator;
using core::mm::FrameOwner;
using duet_bench::Frames;

constexpr uint64_t kGiB = uint64_t{1} << 30;

// QEMU's q35 layout: up to 2 GiB below the PCI hole, the rest from 4 GiB.
std::vector<firmware::E820Entry> q35_map(uint64_t ram) {
    uint64_t low = ram < 2 * kGiB ? ram : 2 * kGiB;
    std::vector<firmware::E820Entry> map = {
        {0x0, 0x9fc00, 1, 1},           {0x9fc00, 0x400, 2, 1},
        {0xf0000, 0x10000, 2, 1},       {0x100000, low - 0x100000, 1, 1},
        {0xb0000000, 0x10000000, 2, 1}, {0xfed1c000, 0x4000, 2, 1},
        {0xfffc0000, 0x40000, 2, 1},
    };
    if (ram > low) {
        map.push_back({4 * kGiB, ram - low, 1, 1});
    }
    return map;
}

std::unique_ptr<hal_sim::Machine> machine(uint64_t ram) {
    hal_sim::MachineConfig config;
    config.cpus = 1;
    config.memory = q35_map(ram);
    return std::make_unique<hal_sim::Machine>(config);
}

void BM_GlibcMalloc4KiB(benchmark::State& state) {
    for (auto _ : state) {
        void* p = std::malloc(4096);
        benchmark::DoNotOptimize(p);
        std::free(p);
    }
}
BENCHMARK(BM_GlibcMalloc4KiB);

void BM_FrameAllocFree(benchmark::State& state) {
    auto m = machine(2 * kGiB);
    hal_sim::Machine::CpuScope scope(*m, 0);
    auto frames = std::make_unique<Frames>();
    if (!frames->init(*m)) {
        state.SkipWithError("cannot set up the frame allocator");
        return;
    }
    for (auto _ : state) {
        auto r = frames->allocator.alloc_frame(FrameOwner::Kernel);
        benchmark::DoNotOptimize(r);
        (void)frames->allocator.free(r.value());
    }
}
BENCHMARK(BM_FrameAllocFree);

void BM_FrameAllocFreeOrder9(benchmark::State& state) {
    auto m = machine(8 * kGiB);
    hal_sim::Machine::CpuScope scope(*m, 0);
    auto frames = std::make_unique<Frames>();
    if (!frames->init(*m)) {
        state.SkipWithError("cannot set up the frame allocator");
        return;
    }
    core::mm::FrameRequest request;
    request.order = core::mm::kOrder2MiB;
    for (auto _ : state) {
        auto r = frames->allocator.alloc(request);
        benchmark::DoNotOptimize(r);
        (void)frames->allocator.free(r.value(), core::mm::kOrder2MiB);
    }
}
BENCHMARK(BM_FrameAllocFreeOrder9);

// Warm: one machine for every run, so the metadata's host pages are touched after the first.
void BM_FrameInit1TiB(benchmark::State& state) {
    static std::unique_ptr<hal_sim::Machine> m = machine(1024 * kGiB);
    hal_sim::Machine::CpuScope scope(*m, 0);
    uint64_t meta = 0;
    for (auto _ : state) {
        auto frames = std::make_unique<Frames>();
        if (!frames->init(*m)) {
            state.SkipWithError("cannot set up the frame allocator");
            return;
        }
        meta = frames->allocator.stats().metadata_bytes;
        state.PauseTiming();
        frames.reset();
        state.ResumeTiming();
    }
    state.counters["metadata_MiB"] = static_cast<double>(meta) / (1 << 20);
}
BENCHMARK(BM_FrameInit1TiB)->Unit(benchmark::kMillisecond)->UseRealTime();

// Cold: a fresh machine each time, so the host also faults in the metadata's pages.
void BM_FrameInit1TiBCold(benchmark::State& state) {
    for (auto _ : state) {
        state.PauseTiming();
        auto m = machine(1024 * kGiB);
        auto frames = std::make_unique<Frames>();
        state.ResumeTiming();
        {
            hal_sim::Machine::CpuScope scope(*m, 0);
            if (!frames->init(*m)) {
                state.SkipWithError("cannot set up the frame allocator");
                return;
            }
        }
        state.PauseTiming();
        frames.reset();
        m.reset();
        state.ResumeTiming();
    }
}
BENCHMARK(BM_FrameInit1TiBCold)->Unit(benchmark::kMillisecond)->UseRealTime();

const int kRatios = [] {
    duet_bench::register_ratio({
        .what = "single-frame alloc+free / glibc malloc+free 4 KiB",
        .numerator = "BM_FrameAllocFree",
        .denominator = "BM_GlibcMalloc4KiB",
        .limit = 1.0,
    });
    duet_bench::register_ratio({
        .what = "2 MiB (order 9) alloc+free / single-frame alloc+free",
        .numerator = "BM_FrameAllocFreeOrder9",
        .denominator = "BM_FrameAllocFree",
        .limit = 10.0,
    });
    return duet_bench::register_ratio({
        .what = "1 TiB allocator init, cold / warm",
        .numerator = "BM_FrameInit1TiBCold",
        .denominator = "BM_FrameInit1TiB",
        .informational = true,
    });
}();

} // namespace
