#pragma once

// Helpers for the physical-memory tests: normalising maps, and a frame allocator set up on a
// simulated machine the way the boot path sets it up.

#include "test_support.hpp"

#include <core/mm/bump_allocator.hpp>
#include <core/mm/frame_allocator.hpp>
#include <core/mm/map_normalizer.hpp>
#include <hal_sim/machine.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <vector>

namespace duet::test {

using core::mm::FrameArea;
using core::mm::MapSummary;
using core::mm::MemoryRegion;
using firmware::E820Entry;

inline constexpr uint64_t KiB = 1024;
inline constexpr uint64_t MiB = 1024 * KiB;
inline constexpr uint64_t GiB = 1024 * MiB;
inline constexpr uint64_t TiB = 1024 * GiB;

struct Normalized {
    MapSummary summary;
    std::vector<MemoryRegion> regions;
    std::vector<FrameArea> areas;
};

struct Range {
    uint64_t base;
    uint64_t length;
};

// Normalises an E820 map, with kernel reservations. Fails the test on an error.
inline Normalized normalize_e820(const std::vector<E820Entry>& map,
                                 const std::vector<Range>& reservations = {}) {
    std::vector<core::mm::MapEvent> events(2 * (map.size() + reservations.size()));
    core::mm::MapNormalizer n(events.data(), events.size());
    for (const auto& e : map) {
        EXPECT_TRUE(n.add_e820(e).ok());
    }
    for (const auto& r : reservations) {
        EXPECT_TRUE(n.reserve(r.base, r.length).ok());
    }
    Normalized out;
    out.regions.resize(events.size());
    out.areas.resize(events.size());
    auto s =
        n.normalize(out.regions.data(), out.regions.size(), out.areas.data(), out.areas.size());
    EXPECT_TRUE(s.ok());
    if (s.ok()) {
        out.summary = s.value();
    }
    out.regions.resize(out.summary.regions);
    out.areas.resize(out.summary.areas);
    return out;
}

// A QEMU-like q35 machine with `ram` bytes of RAM: up to 2 GiB below the PCI hole, the rest
// from 4 GiB up.
inline std::vector<E820Entry> q35_map(uint64_t ram) {
    uint64_t low = ram < 2 * GiB ? ram : 2 * GiB;
    std::vector<E820Entry> map = {
        {0x0, 0x9fc00, 1, 1},           {0x9fc00, 0x400, 2, 1},
        {0xf0000, 0x10000, 2, 1},       {0x100000, low - 0x100000, 1, 1},
        {0xb0000000, 0x10000000, 2, 1}, {0xfed1c000, 0x4000, 2, 1},
        {0xfffc0000, 0x40000, 2, 1},
    };
    if (ram > low) {
        map.push_back({4 * GiB, ram - low, 1, 1});
    }
    return map;
}

// The kernel's path from a machine's BOOTBOOT map to a frame allocator, on its own storage.
struct FramesOnMachine {
    std::unique_ptr<hal_sim::Machine> machine;
    std::optional<hal_sim::Machine::CpuScope> scope;
    std::vector<core::mm::MapEvent> events;
    Normalized map;
    std::unique_ptr<core::mm::BumpAllocator> bump = std::make_unique<core::mm::BumpAllocator>();
    std::vector<core::mm::FrameAllocator::CpuCache> caches =
        std::vector<core::mm::FrameAllocator::CpuCache>(core::kMaxCpus);
    std::unique_ptr<core::mm::FrameAllocator> frames =
        std::make_unique<core::mm::FrameAllocator>(caches.data());

    explicit FramesOnMachine(std::vector<E820Entry> memory, uint32_t cpus = 2,
                             double frame_alloc_faults = 0) {
        hal_sim::MachineConfig config;
        config.cpus = cpus;
        config.memory = std::move(memory);
        config.faults.frame_alloc = frame_alloc_faults;
        machine = std::make_unique<hal_sim::Machine>(config);
        scope.emplace(*machine, 0);
        const bootboot_abi::Info& info = *machine->boot_info().bootboot;
        events.resize(2 * (info.mmap_count() + 2));
        core::mm::MapNormalizer n(events.data(), events.size());
        for (size_t i = 0; i < info.mmap_count(); ++i) {
            EXPECT_TRUE(n.add_bootboot(info.mmap[i]).ok());
        }
        EXPECT_TRUE(n.reserve(0, 4096).ok());
        map.regions.resize(events.size());
        map.areas.resize(events.size());
        auto s =
            n.normalize(map.regions.data(), map.regions.size(), map.areas.data(), map.areas.size());
        EXPECT_TRUE(s.ok());
        map.summary = s.value();
        map.regions.resize(map.summary.regions);
        map.areas.resize(map.summary.areas);
        EXPECT_TRUE(bump->init(map.areas.data(), map.areas.size()).ok());
    }

    // Hands over to the frame allocator (after any bump allocations a test wants).
    void init() {
        auto r =
            frames->init(map.areas.data(), map.areas.size(), *bump, map.summary.reserved_frames());
        ASSERT_TRUE(r.ok()) << core::describe(r.error());
    }

    // Runs `fn` with CPU `cpu` current instead of CPU 0.
    template <typename Fn>
    void on_cpu(uint32_t cpu, Fn fn) {
        scope.reset();
        {
            hal_sim::Machine::CpuScope other(*machine, cpu);
            fn();
        }
        scope.emplace(*machine, 0);
    }

    bool usable(uint64_t base, uint64_t bytes) const {
        for (const auto& a : map.areas) {
            if (base >= a.base.value() && base + bytes <= a.end.value()) {
                return true;
            }
        }
        return false;
    }
};

} // namespace duet::test
