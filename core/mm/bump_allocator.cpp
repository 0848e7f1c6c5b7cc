#include <core/lib/compiler.hpp>
#include <core/mm/bump_allocator.hpp>

namespace core::mm {

BOOT_CODE Result<void> BumpAllocator::init(const FrameArea* areas, size_t count,
                                           hal::PhysAddr floor) {
    for (size_t i = 0; i < count; ++i) {
        const FrameArea& a = areas[i];
        if (!a.base.is_aligned(kFrameSize) || !a.end.is_aligned(kFrameSize) || a.end <= a.base ||
            (i > 0 && a.base < areas[i - 1].end)) {
            return Error::InvalidArgument;
        }
    }
    m_areas = areas;
    m_area_count = count;
    m_area = 0;
    while (m_area < count && areas[m_area].end <= floor) {
        ++m_area;
    }
    m_cursor = 0;
    if (m_area < count) {
        uint64_t f = floor.align_up(kFrameSize).value();
        m_cursor = areas[m_area].base.value() > f ? areas[m_area].base.value() : f;
    }
    m_run_count = 0;
    m_given = 0;
    m_retired = false;
    return {};
}

BOOT_CODE Result<hal::PhysAddr> BumpAllocator::alloc(uint64_t frames, FrameOwner owner,
                                                     uint64_t align) {
    if (m_retired || frames == 0 || (align & (align - 1)) != 0) {
        return Error::InvalidArgument;
    }
    if (align < kFrameSize) {
        align = kFrameSize;
    }
    // No machine has more frames than 52 bits of address space, and the shift must not wrap.
    if (frames > (uint64_t{1} << (52 - kFrameShift))) {
        return Error::OutOfMemory;
    }
    uint64_t bytes = frames << kFrameShift;
    // Look for room without moving: a request that fails leaves the allocator as it was.
    size_t area = m_area;
    uint64_t cursor = m_cursor;
    uint64_t start = 0;
    for (;;) {
        if (area >= m_area_count) {
            return Error::OutOfMemory;
        }
        const FrameArea& a = m_areas[area];
        start = (cursor + align - 1) & ~(align - 1);
        if (start >= cursor && start <= a.end.value() && a.end.value() - start >= bytes) {
            break;
        }
        ++area;
        if (area < m_area_count) {
            cursor = m_areas[area].base.value();
        }
    }
    BumpRun* last = m_run_count > 0 ? &m_runs[m_run_count - 1] : nullptr;
    if (last != nullptr && last->owner == owner &&
        last->base.value() + (last->frames << kFrameShift) == start) {
        last->frames += frames;
    } else {
        if (m_run_count == kMaxRuns) {
            return Error::CapacityExceeded;
        }
        m_runs[m_run_count++] = {hal::PhysAddr(start), frames, owner};
    }
    m_area = area;
    m_cursor = start + bytes;
    m_given += frames;
    return hal::PhysAddr(start);
}

} // namespace core::mm
