#pragma once

// Where the virtual-memory code takes frames (page tables, kernel stacks) and gives them back:
// the frame allocator once it is ready, the bump allocator before that. The boot path builds
// the kernel address space from the bump allocator (before the frame allocator touches every
// free frame through the direct map that the new address space provides), and the frame
// allocator later accounts those frames as allocated ones, so they can be freed like any other.

#include <core/lib/result.hpp>
#include <core/mm/frame.hpp>

#include <hal/types.hpp>

namespace core::mm {

class BumpAllocator;
class FrameAllocator;

class FrameSource {
public:
    constexpr FrameSource() = default;
    constexpr explicit FrameSource(FrameAllocator& frames) : m_frames(&frames) {}
    // The bump allocator until `frames` is ready, then `frames`.
    constexpr FrameSource(BumpAllocator& bump, FrameAllocator& frames)
        : m_bump(&bump), m_frames(&frames) {}

    // 2^order frames, naturally aligned, below `max` (the frame allocator only; the bump
    // allocator hands out low memory first anyway). OutOfMemory, or what the allocator says.
    // `injectable` false: the simulator never injects a failure into this one (what the
    // kernel needs to boot at all; see FrameRequest::injectable).
    [[nodiscard]] Result<hal::PhysAddr> alloc(FrameOwner owner, unsigned order = 0,
                                              hal::PhysAddr max = hal::PhysAddr(~uint64_t{0}),
                                              bool injectable = true) const;
    // InvalidArgument while only the bump allocator is there (it never frees).
    [[nodiscard]] Result<void> free(hal::PhysAddr base, unsigned order = 0) const;

    bool valid() const { return m_frames != nullptr || m_bump != nullptr; }
    // Whether free() can work now.
    bool can_free() const;
    FrameAllocator* frame_allocator() const { return m_frames; }

private:
    BumpAllocator* m_bump = nullptr;
    FrameAllocator* m_frames = nullptr;
};

} // namespace core::mm
