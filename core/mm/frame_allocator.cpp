// The frame allocator's interface and its per-CPU caches: alloc_frame(), alloc() and free(),
// whose single frames and 2 MiB blocks go through the calling CPU's cache (a try-lock, no
// global lock), the refills and drains that move batches between a cache and the buddy lists,
// and the paths under the buddy lock for everything else. The fast paths and everything they
// inline stay in this file.

#include "frame_allocator_internal.hpp"

#include <core/lib/atomic.hpp>
#include <core/lib/compiler.hpp>
#include <core/lib/panic.hpp>
#include <core/mm/frame_allocator.hpp>

#include <hal/cpu.hpp>
#include <hal/fault.hpp>

namespace core::mm {

using namespace frame_detail;

// NOTE: the one place that finds the calling CPU's cache. The caller may move to another CPU
// right after; the cache's try-lock makes that safe (docs/memory.md, per-CPU caches).
ALWAYS_INLINE FrameAllocator::Cache& FrameAllocator::my_cache() {
    return cache(hal::cpu_index());
}

// --- Allocation. ---

Result<hal::PhysAddr> FrameAllocator::alloc_frame(FrameOwner owner) {
    if (static_cast<size_t>(owner) >= kFrameOwnerCount) {
        return Error::InvalidArgument;
    }
    // The simulator may make any allocation fail, to test what callers do with it.
    if (hal::inject_fault(hal::FaultPoint::FrameAlloc)) {
        return Error::OutOfMemory;
    }
    return alloc_cached_frame(owner);
}

Result<hal::PhysAddr> FrameAllocator::alloc_cached_frame(FrameOwner owner) {
    Cache& c = my_cache();
    // NOTE: a trylock instead of disabling interrupts: an interrupt handler (or a thread that
    // moved to another CPU) that finds the cache busy goes to the buddy allocator instead.
    if (try_lock(c.locked)) {
        if (c.count == 0 && m_ready) {
            refill(c);
        }
        if (c.count > 0) {
            uint64_t pfn = c.frames[--c.count];
            set_info(pfn, held_info(owner, 0));
            ++c.used[static_cast<size_t>(owner)];
            DEBUG_ASSERT(cache_consistent(c));
            unlock(c.locked);
            return frame_address(pfn);
        }
        unlock(c.locked);
    }
    FrameRequest request;
    request.owner = owner;
    return alloc_locked_path(request, 0, 0, kNoFrame);
}

Result<hal::PhysAddr> FrameAllocator::alloc(const FrameRequest& request) {
    unsigned order = request.order;
    if (order > kMaxOrder || (request.align & (request.align - 1)) != 0 ||
        request.min >= request.max || static_cast<size_t>(request.owner) >= kFrameOwnerCount) {
        return Error::InvalidArgument;
    }
    unsigned align_order = order;
    if (request.align > kFrameSize) {
        auto a = static_cast<unsigned>(__builtin_ctzll(request.align)) - kFrameShift;
        if (a > kMaxOrder) {
            return Error::InvalidArgument;
        }
        align_order = a > order ? a : order;
    }
    if (request.min.value() > ~uint64_t{0} - kFrameSize ||
        (request.injectable && hal::inject_fault(hal::FaultPoint::FrameAlloc))) {
        return Error::OutOfMemory;
    }
    uint64_t lo = frame_number(request.min.align_up(kFrameSize));
    uint64_t hi = frame_number(request.max);
    if (lo <= m_base_pfn && hi >= m_end_pfn) {
        if (align_order == 0) {
            return alloc_cached_frame(request.owner);
        }
        if (order == kOrder2MiB && align_order == kOrder2MiB) {
            return alloc_huge(request.owner);
        }
    }
    return alloc_locked_path(request, align_order, lo, hi);
}

Result<hal::PhysAddr> FrameAllocator::alloc_huge(FrameOwner owner) {
    Cache& c = my_cache();
    if (try_lock(c.locked)) {
        if (c.huge_count == 0 && m_ready) {
            refill_huge(c);
        }
        if (c.huge_count > 0) {
            uint64_t pfn = c.huge[--c.huge_count];
            set_info(pfn, held_info(owner, kOrder2MiB));
            c.used[static_cast<size_t>(owner)] += kHugeFrames;
            DEBUG_ASSERT(cache_consistent(c));
            unlock(c.locked);
            return frame_address(pfn);
        }
        unlock(c.locked);
    }
    FrameRequest request;
    request.order = kOrder2MiB;
    request.owner = owner;
    return alloc_locked_path(request, kOrder2MiB, 0, kNoFrame);
}

Result<hal::PhysAddr> FrameAllocator::alloc_locked_path(const FrameRequest& request,
                                                        unsigned align_order, uint64_t lo,
                                                        uint64_t hi) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        {
            auto guard = m_lock.lock_irqsave();
            uint64_t pfn = 0;
            if (m_ready && take_block(request, align_order, lo, hi, &pfn)) {
                mark_held(pfn, held_info(request.owner, request.order));
                m_used[static_cast<size_t>(request.owner)] +=
                    static_cast<int64_t>(uint64_t{1} << request.order);
                note_taken();
                DEBUG_ASSERT(buddy_consistent());
                return frame_address(pfn);
            }
        }
        // Frames parked in per-CPU caches may be what is missing: give them back and retry.
        if (attempt == 0) {
            drain_all_caches();
        }
    }
    return Error::OutOfMemory;
}

// --- Per-CPU caches: refills and drains (the cache locked by the caller). ---

// Tops up `cache` (locked by the caller) with a batch of single frames.
void FrameAllocator::refill(Cache& cache) {
    auto guard = m_lock.lock_irqsave();
    while (cache.count < kCacheBatch) {
        uint64_t pfn = 0;
        bool got = false;
        for (unsigned z = kZoneCount; z-- > 0 && !got;) {
            got = take_from_lists(z, 0, &pfn);
        }
        if (!got) {
            break;
        }
        mark_held(pfn, kInfoCached);
        cache.frames[cache.count++] = pfn;
        ++cache.held;
        ++m_in_caches;
    }
    note_taken();
    DEBUG_ASSERT(buddy_consistent());
}

// Adds one 2 MiB block to `cache` (locked by the caller).
void FrameAllocator::refill_huge(Cache& cache) {
    auto guard = m_lock.lock_irqsave();
    uint64_t pfn = 0;
    for (unsigned z = kZoneCount; z-- > 0;) {
        if (take_from_lists(z, kOrder2MiB, &pfn)) {
            mark_held(pfn, kInfoCachedHuge);
            cache.huge[cache.huge_count++] = pfn;
            cache.held += kHugeFrames;
            m_in_caches += kHugeFrames;
            break;
        }
    }
    note_taken();
    DEBUG_ASSERT(buddy_consistent());
}

// Gives the `blocks` oldest 2 MiB blocks of `cache` (locked by the caller) back.
void FrameAllocator::drain_huge(Cache& cache, uint32_t blocks) {
    {
        auto guard = m_lock.lock_irqsave();
        for (uint32_t i = 0; i < blocks; ++i) {
            set_head(cache.huge[i], false);
            release_block(cache.huge[i], kOrder2MiB);
        }
        cache.held -= blocks * kHugeFrames;
        m_in_caches -= blocks * kHugeFrames;
        DEBUG_ASSERT(buddy_consistent());
    }
    for (uint32_t i = blocks; i < cache.huge_count; ++i) {
        cache.huge[i - blocks] = cache.huge[i];
    }
    cache.huge_count -= blocks;
}

// Gives the `frames` oldest frames of `cache` (locked by the caller) back to the buddy lists.
void FrameAllocator::drain(Cache& cache, uint32_t frames) {
    {
        auto guard = m_lock.lock_irqsave();
        for (uint32_t i = 0; i < frames; ++i) {
            uint64_t pfn = cache.frames[i];
            set_head(pfn, false);
            release_block(pfn, 0);
        }
        cache.held -= frames;
        m_in_caches -= frames;
        DEBUG_ASSERT(buddy_consistent());
    }
    for (uint32_t i = frames; i < cache.count; ++i) {
        cache.frames[i - frames] = cache.frames[i];
    }
    cache.count -= frames;
}

void FrameAllocator::drain_all_caches() {
    for (uint32_t i = 0; i < m_cpus; ++i) {
        Cache& c = cache(i);
        if ((atomic::load<atomic::relaxed>(&c.count) != 0 ||
             atomic::load<atomic::relaxed>(&c.huge_count) != 0) &&
            try_lock(c.locked)) {
            drain(c, c.count);
            drain_huge(c, c.huge_count);
            unlock(c.locked);
        }
    }
}

// --- Freeing. ---

Result<void> FrameAllocator::free(hal::PhysAddr base, unsigned order) {
    uint64_t pfn = frame_number(base);
    if (!base.is_aligned(kFrameSize) || pfn < m_base_pfn || pfn >= m_end_pfn) {
        return Error::ForeignAddress;
    }
    if (order > kMaxOrder) {
        return Error::InvalidArgument;
    }
    if ((order == 0 || order == kOrder2MiB) && is_head(pfn)) {
        uint8_t v = info(pfn);
        if (info_allocated(v) && info_order(v) == order) {
            Cache& c = my_cache();
            if (try_lock(c.locked)) {
                if (order == 0) {
                    if (c.count == kCacheCapacity) {
                        drain(c, kCacheBatch);
                    }
                    set_info(pfn, kInfoCached);
                    c.frames[c.count++] = pfn;
                } else {
                    if (c.huge_count == kHugeCacheCapacity) {
                        drain_huge(c, 1);
                    }
                    set_info(pfn, kInfoCachedHuge);
                    c.huge[c.huge_count++] = pfn;
                }
                c.used[static_cast<size_t>(info_owner(v))] -= int64_t{1} << order;
                DEBUG_ASSERT(cache_consistent(c));
                unlock(c.locked);
                return {};
            }
        }
    }
    auto guard = m_lock.lock_irqsave();
    return free_locked(pfn, order);
}

Result<void> FrameAllocator::free_locked(uint64_t pfn, unsigned order) {
    if (!is_head(pfn)) {
        return classify_bad_free(pfn);
    }
    uint8_t v = info(pfn);
    if (v == kInfoCached || v == kInfoCachedHuge) {
        return Error::DoubleFree;
    }
    if (info_order(v) != order) {
        return Error::InvalidArgument;
    }
    set_head(pfn, false);
    m_used[static_cast<size_t>(info_owner(v))] -= static_cast<int64_t>(uint64_t{1} << order);
    release_block(pfn, order);
    DEBUG_ASSERT(buddy_consistent());
    return {};
}

// `pfn` is not the first frame of a held block: it is inside a free block or a cached 2 MiB
// block (a double free), inside an allocated block, or in memory this allocator does not
// manage (both foreign).
Error FrameAllocator::classify_bad_free(uint64_t pfn) const {
    uint64_t huge = pfn & ~(kHugeFrames - 1);
    if (huge >= m_base_pfn && is_head(huge) && info(huge) == kInfoCachedHuge) {
        return Error::DoubleFree;
    }
    for (unsigned k = 0; k <= kMaxOrder; ++k) {
        uint64_t head = pfn & ~((uint64_t{1} << k) - 1);
        if (head < m_base_pfn) {
            break;
        }
        if (m_free[k].test((head - m_base_pfn) >> k)) {
            return Error::DoubleFree;
        }
    }
    return Error::ForeignAddress;
}

} // namespace core::mm
