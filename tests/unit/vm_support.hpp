#pragma once

// Helpers for the virtual-memory tests: a frame allocator on a simulated machine (the boot
// path's), and a kernel address space description for that machine.

#include "mm_support.hpp"

#include <core/mm/address_space.hpp>
#include <core/mm/kernel_space.hpp>
#include <core/mm/page_table.hpp>
#include <hal_sim/mmu.hpp>

#include <gtest/gtest.h>

#include <vector>

namespace duet::test {

inline uint64_t page_table_frames(core::mm::FrameAllocator& frames) {
    return frames.stats().used_by[static_cast<size_t>(core::mm::FrameOwner::PageTables)];
}

inline uint64_t frames_used_by(core::mm::FrameAllocator& frames, core::mm::FrameOwner owner) {
    return frames.stats().used_by[static_cast<size_t>(owner)];
}

// A made-up kernel image where the loader copied the kernel: 64 KiB of text, 16 KiB of rodata,
// 32 KiB of data and bss, page-aligned as the linker script lays them out.
inline core::mm::KernelImage test_image(const firmware::Handover& h) {
    core::mm::KernelImage image;
    image.text_start = core::mm::kKernelImageBase;
    image.text_end = image.text_start.offset(64 * KiB);
    image.rodata_start = image.text_end;
    image.rodata_end = image.rodata_start.offset(16 * KiB);
    image.data_start = image.rodata_end;
    image.data_end = image.data_start.offset(32 * KiB);
    image.phys_base = hal::PhysAddr(h.kernel);
    return image;
}

// The BOOTBOOT map of `m`, normalised as the boot path does (page 0 reserved).
inline std::vector<MemoryRegion> boot_regions(const hal_sim::Machine& m) {
    const bootboot_abi::Info& info = *m.boot_info().bootboot;
    std::vector<core::mm::MapEvent> events(2 * (info.mmap_count() + 1));
    core::mm::MapNormalizer n(events.data(), events.size());
    for (size_t i = 0; i < info.mmap_count(); ++i) {
        EXPECT_TRUE(n.add_bootboot(info.mmap[i]).ok());
    }
    EXPECT_TRUE(n.reserve(0, 4096).ok());
    std::vector<MemoryRegion> regions(events.size());
    std::vector<FrameArea> areas(events.size());
    auto s = n.normalize(regions.data(), regions.size(), areas.data(), areas.size());
    EXPECT_TRUE(s.ok());
    regions.resize(s.ok() ? s.value().regions : 0);
    return regions;
}

// What the boot path would describe for machine `m`, whose normalised map is `regions`.
struct KernelSpaceInputs {
    std::vector<core::mm::RamRange> ram;
    core::mm::KernelSpaceDesc desc;

    KernelSpaceInputs(const hal_sim::Machine& m, const std::vector<MemoryRegion>& regions,
                      uint64_t framebuffer = 0, uint64_t framebuffer_bytes = 0) {
        const firmware::Handover& h = m.boot_state().handover;
        // The initrd is left out of the BOOTBOOT map; the direct map covers it.
        core::mm::RamRange initrd{hal::PhysAddr(h.initrd), hal::PhysAddr(h.initrd + h.initrd_size)};
        ram.resize(regions.size() + 1);
        auto n = core::mm::direct_map_ranges(regions.data(), regions.size(), &initrd, 1, ram.data(),
                                             ram.size());
        EXPECT_TRUE(n.ok());
        ram.resize(n.ok() ? n.value() : 0);
        desc.ram = ram.data();
        desc.ram_count = ram.size();
        desc.image = test_image(h);
        desc.bootboot = hal::PhysAddr(h.bootboot);
        desc.environment = hal::PhysAddr(h.environment);
        desc.framebuffer = hal::PhysAddr(framebuffer);
        desc.framebuffer_bytes = framebuffer_bytes;
        desc.boot_stacks = hal::PhysAddr(h.stacks);
        desc.boot_stack_pages = h.stack_pages;
    }

    explicit KernelSpaceInputs(const FramesOnMachine& f, uint64_t framebuffer = 0,
                               uint64_t framebuffer_bytes = 0)
        : KernelSpaceInputs(*f.machine, f.map.regions, framebuffer, framebuffer_bytes) {}
};

inline hal_sim::WalkResult walk(hal_sim::Machine& m, uint64_t cr3, uint64_t va,
                                hal_sim::AccessKind kind,
                                hal_sim::Privilege privilege = hal_sim::Privilege::Supervisor) {
    hal_sim::MmuState mmu;
    mmu.cr3 = cr3;
    mmu.pat = core::mm::kPatValue;
    return hal_sim::walk(m.ram(), mmu, va, kind, privilege);
}

} // namespace duet::test
