#pragma once

// The kernel's physical memory: bring-up from the BOOTBOOT map, and the frame allocator every
// later user calls.

#include <core/mm/bump_allocator.hpp>
#include <core/mm/frame_allocator.hpp>
#include <core/mm/heap.hpp>
#include <core/mm/map_normalizer.hpp>

#include <hal/bootboot.hpp>

namespace core::mm {

// The kernel's frame allocator (ready once init_physical_memory() has run).
FrameAllocator& frames();

// Boot, on the bootstrap CPU, after the memory map has been logged, in two steps (ARCHITECTURE.md,
// Boot: the kernel address space is built from the bump allocator between them):
//
// start_physical_memory() normalises the BOOTBOOT map, reserving page 0 and the initrd (the
// kernel image and the BOOTBOOT structures are holes in the map already), logs
// "mm: N usable frames (X MiB) in K areas" and starts the bump allocator.
//
// hand_over_frames() starts the frame allocator from the bump allocator's state and logs
// "frames: total N, free N, used N, reserved N". The frame allocator links free blocks through
// the direct map: every usable frame must be reachable through hal::phys_to_virt() by then.
//
// Both stop the machine with a panic if the map cannot be used, and run on the 1 KiB bring-up
// stack: every buffer is static. init_physical_memory() is the two in a row.
void start_physical_memory(const bootboot_abi::Info& info);
void hand_over_frames();
void init_physical_memory(const bootboot_abi::Info& info);

// The bring-up allocator: usable between start_physical_memory() and hand_over_frames().
BumpAllocator& bump_allocator();

// The normalised BOOTBOOT map, once start_physical_memory() has run (static storage).
struct BootMemoryMap {
    const MemoryRegion* regions;
    size_t region_count;
    const FrameArea* areas;
    size_t area_count;
    MapSummary summary;
};
BootMemoryMap boot_memory_map();

// free + used + reserved = total for the kernel's frame allocator (true before it is set up).
// No lock, no HAL call: for the simulator once a run has ended, and for debug checks.
bool check_frame_accounting();

// Logs the allocator's counters as one line: "frames: total N, free N, used N, reserved N".
void log_frame_stats();

// The allocators' counters as the kernel read them, under their locks, just before it stopped
// the machine: what the simulator reports, since a CPU stopped with the machine may be halfway
// through an update (a schedule that stops at synchronisation points can leave it inside a
// critical section). `taken` is false until take_final_stats().
struct FinalStats {
    bool taken = false;
    FrameStats frames;
    HeapStats heap;
};
void take_final_stats();
const FinalStats& final_stats();

} // namespace core::mm
