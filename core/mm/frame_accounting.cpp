// The frame allocator's accounting: every frame is free, used (by one owner) or reserved, and
// the three add up to the total. The counters, their snapshot and lock-free hints, the checks
// of their invariants, and audit(), which walks every list, bitmap, cache and held block
// against them.

#include "frame_allocator_internal.hpp"

#include <core/lib/atomic.hpp>
#include <core/mm/frame_allocator.hpp>

namespace core::mm {

using namespace frame_detail;

const char* frame_owner_name(FrameOwner owner) {
    switch (owner) {
    case FrameOwner::Kernel:
        return "kernel";
    case FrameOwner::FrameMetadata:
        return "frame-metadata";
    case FrameOwner::BootData:
        return "boot-data";
    case FrameOwner::PageTables:
        return "page-tables";
    case FrameOwner::KernelStacks:
        return "kernel-stacks";
    case FrameOwner::Heap:
        return "heap";
    case FrameOwner::User:
        return "user";
    }
    return "unknown";
}

bool FrameAllocator::buddy_consistent() const {
    int64_t used = 0;
    for (int64_t u : m_used) {
        used += u;
    }
    return static_cast<int64_t>(m_buddy_free + m_reserved) + m_in_caches + used ==
           static_cast<int64_t>(m_total);
}

FrameStats FrameAllocator::stats() {
    FrameStats s;
    // NOTE: a consistent snapshot while the other CPUs go on (init's last report is taken so):
    // every cache's flag first, then the lock. A cache's owner holding its flag may wait for
    // the lock (to drain), so the flags must come first; an owner that finds its flag taken
    // uses the locked path instead, as it does when an interrupt finds it so.
    InterruptGuard irq;
    for (uint32_t i = 0; i < m_cpus; ++i) {
        while (!try_lock(cache(i).locked)) {
            hal::cpu_relax();
        }
    }
    {
        auto guard = m_lock.lock_irqsave();
        s.total = m_total;
        s.reserved = m_reserved;
        s.metadata_bytes = m_meta_bytes;
        int64_t used[kFrameOwnerCount];
        for (size_t o = 0; o < kFrameOwnerCount; ++o) {
            used[o] = m_used[o];
        }
        for (uint32_t i = 0; i < m_cpus; ++i) {
            const Cache& c = cache(i);
            s.cached += c.count + uint64_t{c.huge_count} * kHugeFrames;
            for (size_t o = 0; o < kFrameOwnerCount; ++o) {
                used[o] += c.used[o];
            }
        }
        s.free = m_buddy_free + s.cached;
        s.peak_taken = m_peak_taken;
        for (size_t o = 0; o < kFrameOwnerCount; ++o) {
            s.used_by[o] = used[o] > 0 ? static_cast<uint64_t>(used[o]) : 0;
            s.used += s.used_by[o];
        }
    }
    for (uint32_t i = 0; i < m_cpus; ++i) {
        unlock(cache(i).locked);
    }
    return s;
}

uint64_t FrameAllocator::free_frames_hint() const {
    uint64_t free = atomic::load<atomic::relaxed>(&m_buddy_free);
    for (uint32_t i = 0; i < m_cpus; ++i) {
        const Cache& c = cache(i);
        free += atomic::load<atomic::relaxed>(&c.count) +
                uint64_t{atomic::load<atomic::relaxed>(&c.huge_count)} * kHugeFrames;
    }
    return free;
}

bool FrameAllocator::quiescent() const {
    if (m_lock.is_locked()) {
        return false;
    }
    for (uint32_t i = 0; i < m_cpus; ++i) {
        if (atomic::load<atomic::relaxed>(&cache(i).locked)) {
            return false;
        }
    }
    return true;
}

bool FrameAllocator::accounting_holds() const {
    if (!buddy_consistent()) {
        return false;
    }
    int64_t held = 0;
    uint64_t cached = 0;
    int64_t used[kFrameOwnerCount];
    for (size_t o = 0; o < kFrameOwnerCount; ++o) {
        used[o] = m_used[o];
    }
    for (uint32_t i = 0; i < m_cpus; ++i) {
        const Cache& c = cache(i);
        if (!cache_consistent(c) || c.count > kCacheCapacity || c.huge_count > kHugeCacheCapacity) {
            return false;
        }
        held += c.held;
        cached += c.count + c.huge_count * kHugeFrames;
        for (size_t o = 0; o < kFrameOwnerCount; ++o) {
            used[o] += c.used[o];
        }
    }
    int64_t used_total = 0;
    for (int64_t u : used) {
        if (u < 0) {
            return false;
        }
        used_total += u;
    }
    return held == m_in_caches &&
           m_buddy_free + cached + static_cast<uint64_t>(used_total) + m_reserved == m_total;
}

const char* FrameAllocator::audit() const {
    if (!accounting_holds()) {
        return "the counters do not add up";
    }
    if (!m_ready) {
        return nullptr;
    }
    // The free lists against the bitmaps and the counters.
    uint64_t free_frames = 0;
    for (unsigned z = 0; z < kZoneCount; ++z) {
        for (unsigned k = 0; k < kOrderCount; ++k) {
            if (((m_nonempty[z] >> k) & 1) == 0) {
                continue;
            }
            uint64_t prev = kNoFrame;
            uint64_t limit = m_end_pfn - m_base_pfn;
            for (uint64_t p = m_lists[z][k]; p != kNoFrame; p = node(p)->next) {
                const FreeNode* n = node(p);
                if (limit-- == 0 || p < m_base_pfn || p + (uint64_t{1} << k) > m_end_pfn ||
                    (p & ((uint64_t{1} << k) - 1)) != 0 || zone_of(p) != z ||
                    zone_of(p + (uint64_t{1} << k) - 1) != z || n->prev != prev ||
                    n->check != node_check(p, k) || !m_free[k].test((p - m_base_pfn) >> k) ||
                    is_head(p)) {
                    return "a free list is broken";
                }
                free_frames += uint64_t{1} << k;
                prev = p;
            }
        }
    }
    uint64_t bitmap_frames = 0;
    for (unsigned k = 0; k < kOrderCount; ++k) {
        if (!m_free[k].summaries_consistent()) {
            return "a free bitmap's summary disagrees with it";
        }
        bitmap_frames += m_free[k].count() << k;
    }
    if (free_frames != m_buddy_free || bitmap_frames != m_buddy_free) {
        return "the free lists, the free bitmaps and the free count disagree";
    }
    // Every held block: a cached frame or an allocated block, counted once.
    uint64_t cached = 0;
    uint64_t in_caches = 0;
    int64_t used[kFrameOwnerCount] = {};
    uint64_t span = m_end_pfn - m_base_pfn;
    for (uint64_t w = 0; w < (span + 63) / 64; ++w) {
        for (uint64_t bits = m_heads[w]; bits != 0; bits &= bits - 1) {
            uint64_t pfn = m_base_pfn + w * 64 + static_cast<uint64_t>(__builtin_ctzll(bits));
            uint8_t v = info(pfn);
            if (v == kInfoCached) {
                ++cached;
            } else if (v == kInfoCachedHuge) {
                cached += kHugeFrames;
            } else if (info_allocated(v) && info_order(v) <= kMaxOrder &&
                       static_cast<size_t>(info_owner(v)) < kFrameOwnerCount) {
                used[static_cast<size_t>(info_owner(v))] += int64_t{1} << info_order(v);
            } else {
                return "a held block's info byte is corrupt";
            }
        }
    }
    int64_t expected[kFrameOwnerCount];
    for (size_t o = 0; o < kFrameOwnerCount; ++o) {
        expected[o] = m_used[o];
    }
    expected[static_cast<size_t>(FrameOwner::FrameMetadata)] -=
        static_cast<int64_t>(m_meta_bytes >> kFrameShift);
    for (uint32_t i = 0; i < m_cpus; ++i) {
        const Cache& c = cache(i);
        in_caches += c.count + c.huge_count * kHugeFrames;
        for (uint32_t f = 0; f < c.count; ++f) {
            if (!is_head(c.frames[f]) || info(c.frames[f]) != kInfoCached) {
                return "a per-CPU cache holds a frame not marked as cached";
            }
        }
        for (uint32_t f = 0; f < c.huge_count; ++f) {
            if (!is_head(c.huge[f]) || info(c.huge[f]) != kInfoCachedHuge) {
                return "a per-CPU cache holds a 2 MiB block not marked as cached";
            }
        }
        for (size_t o = 0; o < kFrameOwnerCount; ++o) {
            expected[o] += c.used[o];
        }
    }
    if (cached != in_caches) {
        return "frames marked as cached are not all in caches";
    }
    for (size_t o = 0; o < kFrameOwnerCount; ++o) {
        if (used[o] != expected[o]) {
            return "the held blocks of an owner do not add up to its count";
        }
    }
    return nullptr;
}

} // namespace core::mm
