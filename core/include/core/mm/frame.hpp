#pragma once

// Physical frames: the 4 KiB unit of physical memory, the areas of them the kernel may use,
// and who uses a frame, for accounting.

#include <hal/types.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core::mm {

inline constexpr uint64_t kFrameShift = 12;
inline constexpr uint64_t kFrameSize = uint64_t{1} << kFrameShift;

constexpr uint64_t frame_number(hal::PhysAddr pa) {
    return pa.value() >> kFrameShift;
}
constexpr hal::PhysAddr frame_address(uint64_t pfn) {
    return hal::PhysAddr(pfn << kFrameShift);
}

// A run of usable frames: [base, end), both frame-aligned.
struct FrameArea {
    hal::PhysAddr base;
    hal::PhysAddr end;

    constexpr uint64_t frames() const { return (end.value() - base.value()) >> kFrameShift; }
    constexpr bool operator==(const FrameArea&) const = default;
};

// Who holds an allocated frame. Every used frame is counted under exactly one owner.
enum class FrameOwner : uint8_t {
    Kernel = 0,        // kernel use not named below (and tests)
    FrameMetadata = 1, // the frame allocator's own bookkeeping
    BootData = 2,      // other bring-up allocations made before the heap exists
    PageTables = 3,
    KernelStacks = 4,
    Heap = 5,
    User = 6, // memory mapped into user address spaces
};
// NOTE: the frame allocator packs the owner into 3 bits next to the block order; 7 is its limit.
inline constexpr size_t kFrameOwnerCount = 7;

const char* frame_owner_name(FrameOwner owner);

} // namespace core::mm
