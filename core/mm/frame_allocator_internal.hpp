#pragma once

// The frame allocator's shared internals, private to core/mm/frame*.cpp: the zones' bounds,
// the per-frame state (a "held block" bit and an info byte), the links a free block keeps in
// its first frame, the per-CPU cache's lock, and the counters' local invariants. Inline, so that
// the per-CPU fast paths in frame_allocator.cpp make no call for them.

#include <core/lib/atomic.hpp>
#include <core/lib/compiler.hpp>
#include <core/mm/frame_allocator.hpp>

#include <stdint.h>

namespace core::mm {

namespace frame_detail {

inline constexpr uint64_t kNoFrame = ~uint64_t{0};

// Zones, split where hardware limits fall: below 1 MiB (real-mode AP trampolines) and below
// 4 GiB (32-bit DMA). Both boundaries are aligned to their zone's largest block, so blocks
// never straddle them; the highest zone is served first.
inline constexpr uint64_t kZoneStart[] = {0, (uint64_t{1} << 20) >> kFrameShift,
                                          (uint64_t{1} << 32) >> kFrameShift};

// The per-frame info byte of a held block's first frame:
//   0x1F            a free frame parked in a per-CPU cache;
//   0x1E            a free 2 MiB block parked in a per-CPU cache;
//   (owner+1)<<5|k  the first frame of an allocated block of order k.
inline constexpr uint8_t kInfoCached = 0x1F;
inline constexpr uint8_t kInfoCachedHuge = 0x1E;
inline constexpr uint64_t kHugeFrames = uint64_t{1} << kOrder2MiB;

constexpr uint8_t held_info(FrameOwner owner, unsigned order) {
    return static_cast<uint8_t>(((static_cast<unsigned>(owner) + 1) << 5) | order);
}
constexpr bool info_allocated(uint8_t v) {
    return v >= 0x20;
}
constexpr unsigned info_order(uint8_t v) {
    return v & 31;
}
constexpr FrameOwner info_owner(uint8_t v) {
    return static_cast<FrameOwner>((v >> 5) - 1);
}
static_assert(kFrameOwnerCount <= 7 && kMaxOrder < 31);

inline constexpr uint64_t kFreeMagic = 0xF4EE'B10C'0000'0000;

constexpr uint64_t node_check(uint64_t pfn, unsigned order) {
    return kFreeMagic ^ (pfn << 5) ^ order;
}

inline bool try_lock(bool& locked) {
    return !atomic::exchange<atomic::acquire>(&locked, true);
}

inline void unlock(bool& locked) {
    atomic::store<atomic::release>(&locked, false);
}

template <typename Cache>
inline bool cache_consistent(const Cache& c) {
    int64_t used = 0;
    for (int64_t u : c.used) {
        used += u;
    }
    return static_cast<int64_t>(c.count + c.huge_count * kHugeFrames) + used == c.held;
}

} // namespace frame_detail

// A free block's first frame holds its list links (frame numbers, not pointers).
struct FrameAllocator::FreeNode {
    uint64_t next;
    uint64_t prev;
    // NOTE: a write into a free frame (a use after free) breaks this, and the next time the
    // block is taken the allocator panics instead of handing out corrupt lists.
    uint64_t check;
};

ALWAYS_INLINE FrameAllocator::FreeNode* FrameAllocator::node(uint64_t pfn) const {
    return reinterpret_cast<FreeNode*>(m_direct_map + (pfn << kFrameShift));
}

// --- Frame state. ---

ALWAYS_INLINE bool FrameAllocator::is_head(uint64_t pfn) const {
    uint64_t i = pfn - m_base_pfn;
    return (atomic::load<atomic::relaxed>(&m_heads[i >> 6]) >> (i & 63)) & 1;
}

ALWAYS_INLINE void FrameAllocator::set_head(uint64_t pfn, bool head) {
    // NOTE: only the buddy lock holder writes this bitmap, so a load and a store suffice; the
    // per-CPU fast paths only read it, concurrently, hence the relaxed atomics.
    uint64_t i = pfn - m_base_pfn;
    uint64_t bit = uint64_t{1} << (i & 63);
    uint64_t w = atomic::load<atomic::relaxed>(&m_heads[i >> 6]);
    atomic::store<atomic::relaxed>(&m_heads[i >> 6], head ? (w | bit) : (w & ~bit));
}

ALWAYS_INLINE uint8_t FrameAllocator::info(uint64_t pfn) const {
    return atomic::load<atomic::relaxed>(&m_info[pfn - m_base_pfn]);
}

ALWAYS_INLINE void FrameAllocator::set_info(uint64_t pfn, uint8_t value) {
    atomic::store<atomic::relaxed>(&m_info[pfn - m_base_pfn], value);
}

// --- Zones. ---

inline unsigned FrameAllocator::zone_of(uint64_t pfn) const {
    return pfn < frame_detail::kZoneStart[1] ? 0 : pfn < frame_detail::kZoneStart[2] ? 1 : 2;
}

inline uint64_t FrameAllocator::zone_start(unsigned zone) const {
    return frame_detail::kZoneStart[zone];
}

inline uint64_t FrameAllocator::zone_end(unsigned zone) const {
    return zone + 1 < kZoneCount ? frame_detail::kZoneStart[zone + 1] : frame_detail::kNoFrame;
}

// --- Accounting. ---

// Under the lock, after frames left the buddy allocator: the high-water mark of frames out of
// it (used, or waiting in a per-CPU cache). Only the slow paths take frames from the buddy
// allocator, so the fast path pays nothing for it.
inline void FrameAllocator::note_taken() {
    uint64_t taken = m_total - m_reserved - m_buddy_free;
    if (taken > m_peak_taken) {
        m_peak_taken = taken;
    }
}

} // namespace core::mm
