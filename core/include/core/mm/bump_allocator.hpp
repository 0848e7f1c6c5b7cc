#pragma once

// The bring-up frame allocator: hands out frames from the usable areas, lowest address first,
// before the frame allocator (and its metadata) exists. It never frees. It remembers what it
// gave out, as runs of frames per owner, so that FrameAllocator::init() can account every
// one of them as used and take over everything else as free.

#include <core/lib/result.hpp>
#include <core/mm/frame.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core::mm {

// Frames [base, base + frames) handed out to `owner`.
struct BumpRun {
    hal::PhysAddr base;
    uint64_t frames;
    FrameOwner owner;
};

class BumpAllocator {
public:
    // Consecutive allocations for one owner share a run, so bring-up rarely needs many.
    static constexpr size_t kMaxRuns = 64;
    // Memory below 1 MiB is kept for what needs it (AP trampolines).
    static constexpr hal::PhysAddr kDefaultFloor{uint64_t{1} << 20};

    constexpr BumpAllocator() = default;
    BumpAllocator(const BumpAllocator&) = delete;
    BumpAllocator& operator=(const BumpAllocator&) = delete;

    // Starts handing out frames from `areas` (sorted, disjoint, frame-aligned; the caller keeps
    // them alive), none below `floor`. InvalidArgument if the areas are not like that.
    [[nodiscard]] Result<void> init(const FrameArea* areas, size_t count,
                                    hal::PhysAddr floor = kDefaultFloor);

    // `frames` contiguous frames aligned to `align` bytes (a power of two, at least a frame).
    // First fit, moving forward only: frames skipped over stay free for the frame allocator.
    // OutOfMemory if no area has room; CapacityExceeded if the run table is full;
    // InvalidArgument after retire() or for a bad alignment.
    [[nodiscard]] Result<hal::PhysAddr> alloc(uint64_t frames, FrameOwner owner,
                                              uint64_t align = kFrameSize);

    // Ends bring-up: later alloc() calls fail. Called by FrameAllocator::init().
    void retire() { m_retired = true; }
    bool retired() const { return m_retired; }

    // What was handed out, sorted by address.
    const BumpRun* runs() const { return m_runs; }
    size_t run_count() const { return m_run_count; }
    uint64_t frames_given() const { return m_given; }
    const FrameArea* areas() const { return m_areas; }
    size_t area_count() const { return m_area_count; }

private:
    const FrameArea* m_areas = nullptr;
    size_t m_area_count = 0;
    size_t m_area = 0;     // the area the cursor is in
    uint64_t m_cursor = 0; // next free byte in it
    BumpRun m_runs[kMaxRuns]{};
    size_t m_run_count = 0;
    uint64_t m_given = 0;
    bool m_retired = false;
};

} // namespace core::mm
