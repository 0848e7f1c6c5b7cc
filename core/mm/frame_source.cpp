#include <core/mm/bump_allocator.hpp>
#include <core/mm/frame_allocator.hpp>
#include <core/mm/frame_source.hpp>

namespace core::mm {

Result<hal::PhysAddr> FrameSource::alloc(FrameOwner owner, unsigned order, hal::PhysAddr max,
                                         bool injectable) const {
    if (m_frames != nullptr && (m_bump == nullptr || m_frames->ready())) {
        if (order == 0 && max == hal::PhysAddr(~uint64_t{0}) && injectable) {
            return m_frames->alloc_frame(owner);
        }
        FrameRequest request;
        request.order = order;
        request.owner = owner;
        request.max = max;
        request.injectable = injectable;
        return m_frames->alloc(request);
    }
    if (m_bump != nullptr) {
        return m_bump->alloc(uint64_t{1} << order, owner, kFrameSize << order);
    }
    return Error::OutOfMemory;
}

bool FrameSource::can_free() const {
    return m_frames != nullptr && m_frames->ready();
}

Result<void> FrameSource::free(hal::PhysAddr base, unsigned order) const {
    if (can_free()) {
        return m_frames->free(base, order);
    }
    return Error::InvalidArgument;
}

} // namespace core::mm
