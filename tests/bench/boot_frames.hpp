#pragma once

// The kernel's boot path from a simulated machine's BOOTBOOT map to a frame allocator, for the
// benchmarks: the map normalised (the first page reserved), the bump allocator, the hand-over.

#include <core/mm/bump_allocator.hpp>
#include <core/mm/frame_allocator.hpp>
#include <core/mm/map_normalizer.hpp>
#include <hal_sim/machine.hpp>

#include <vector>

namespace duet_bench {

// The boot path's memory bring-up, into caller-owned storage. Under a CpuScope.
struct Frames {
    std::vector<core::mm::MapEvent> events;
    std::vector<core::mm::MemoryRegion> regions;
    std::vector<core::mm::FrameArea> areas;
    core::mm::BumpAllocator bump;
    std::vector<core::mm::FrameAllocator::CpuCache> caches =
        std::vector<core::mm::FrameAllocator::CpuCache>(core::kMaxCpus);
    core::mm::FrameAllocator allocator{caches.data()};

    bool init(const hal_sim::Machine& m) {
        const bootboot_abi::Info& info = *m.boot_info().bootboot;
        events.resize(2 * (info.mmap_count() + 1));
        regions.resize(events.size());
        areas.resize(events.size());
        core::mm::MapNormalizer map(events.data(), events.size());
        for (size_t i = 0; i < info.mmap_count(); ++i) {
            if (!map.add_bootboot(info.mmap[i]).ok()) {
                return false;
            }
        }
        if (!map.reserve(0, 4096).ok()) {
            return false;
        }
        auto s = map.normalize(regions.data(), regions.size(), areas.data(), areas.size());
        return s.ok() && bump.init(areas.data(), s.value().areas).ok() &&
               allocator.init(areas.data(), s.value().areas, bump, s.value().reserved_frames())
                   .ok();
    }
};

} // namespace duet_bench
