#include <core/lib/compiler.hpp>
#include <core/mm/frame_allocator.hpp>

#include <hal/cpu.hpp>
#include <hal/fault.hpp>
#include <hal/mmu.hpp>

namespace core::mm {

namespace {

constexpr uint64_t kNoFrame = ~uint64_t{0};

// Zones, split where hardware limits fall: below 1 MiB (real-mode AP trampolines) and below
// 4 GiB (32-bit DMA). Both boundaries are aligned to their zone's largest block, so blocks
// never straddle them; the highest zone is served first.
constexpr uint64_t kZoneStart[] = {0, (uint64_t{1} << 20) >> kFrameShift,
                                   (uint64_t{1} << 32) >> kFrameShift};

// The per-frame info byte of a held block's first frame:
//   0x1F            a free frame parked in a per-CPU cache;
//   0x1E            a free 2 MiB block parked in a per-CPU cache;
//   (owner+1)<<5|k  the first frame of an allocated block of order k.
constexpr uint8_t kInfoCached = 0x1F;
constexpr uint8_t kInfoCachedHuge = 0x1E;
constexpr uint64_t kHugeFrames = uint64_t{1} << kOrder2MiB;

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

constexpr uint64_t kFreeMagic = 0xF4EE'B10C'0000'0000;

constexpr uint64_t node_check(uint64_t pfn, unsigned order) {
    return kFreeMagic ^ (pfn << 5) ^ order;
}

// The metadata of a span of frames, in this order: the heads bitmap, the free bitmap of each
// order with its summaries, the info bytes (last: they need no alignment). Recomputed rather
// than kept in a table, to keep the bring-up stack frames small.
uint64_t heads_words(uint64_t span) {
    return (span + 63) / 64;
}

uint64_t free_bits(uint64_t span, unsigned order) {
    return (span + (uint64_t{1} << order) - 1) >> order;
}

uint64_t metadata_frames(uint64_t span) {
    uint64_t words = heads_words(span);
    for (unsigned k = 0; k < kOrderCount; ++k) {
        words += LevelBitmap::words_needed(free_bits(span, k));
    }
    uint64_t bytes = words * sizeof(uint64_t) + span;
    return (bytes + kFrameSize - 1) >> kFrameShift;
}

bool try_lock(bool& locked) {
    return !__atomic_exchange_n(&locked, true, __ATOMIC_ACQUIRE);
}

void unlock(bool& locked) {
    __atomic_store_n(&locked, false, __ATOMIC_RELEASE);
}

} // namespace

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

// A free block's first frame holds its list links (frame numbers, not pointers).
struct FrameAllocator::FreeNode {
    uint64_t next;
    uint64_t prev;
    // NOTE: a write into a free frame (a use after free) breaks this, and the next time the
    // block is taken the allocator panics instead of handing out corrupt lists.
    uint64_t check;
};

// --- Frame state. ---

ALWAYS_INLINE bool FrameAllocator::is_head(uint64_t pfn) const {
    uint64_t i = pfn - m_base_pfn;
    return (__atomic_load_n(&m_heads[i >> 6], __ATOMIC_RELAXED) >> (i & 63)) & 1;
}

ALWAYS_INLINE void FrameAllocator::set_head(uint64_t pfn, bool head) {
    // NOTE: only the buddy lock holder writes this bitmap, so a load and a store suffice; the
    // per-CPU fast paths only read it, concurrently, hence the relaxed atomics.
    uint64_t i = pfn - m_base_pfn;
    uint64_t bit = uint64_t{1} << (i & 63);
    uint64_t w = __atomic_load_n(&m_heads[i >> 6], __ATOMIC_RELAXED);
    __atomic_store_n(&m_heads[i >> 6], head ? (w | bit) : (w & ~bit), __ATOMIC_RELAXED);
}

ALWAYS_INLINE uint8_t FrameAllocator::info(uint64_t pfn) const {
    return __atomic_load_n(&m_info[pfn - m_base_pfn], __ATOMIC_RELAXED);
}

ALWAYS_INLINE void FrameAllocator::set_info(uint64_t pfn, uint8_t value) {
    __atomic_store_n(&m_info[pfn - m_base_pfn], value, __ATOMIC_RELAXED);
}

// --- Zones and free lists (m_lock held). ---

unsigned FrameAllocator::zone_of(uint64_t pfn) const {
    return pfn < kZoneStart[1] ? 0 : pfn < kZoneStart[2] ? 1 : 2;
}

uint64_t FrameAllocator::zone_start(unsigned zone) const {
    return kZoneStart[zone];
}

uint64_t FrameAllocator::zone_end(unsigned zone) const {
    return zone + 1 < kZoneCount ? kZoneStart[zone + 1] : kNoFrame;
}

ALWAYS_INLINE FrameAllocator::FreeNode* FrameAllocator::node(uint64_t pfn) const {
    return reinterpret_cast<FreeNode*>(m_direct_map + (pfn << kFrameShift));
}

void FrameAllocator::push_free(uint64_t pfn, unsigned order) {
    unsigned z = zone_of(pfn);
    uint64_t head = (m_nonempty[z] >> order) & 1 ? m_lists[z][order] : kNoFrame;
    FreeNode* n = node(pfn);
    n->next = head;
    n->prev = kNoFrame;
    n->check = node_check(pfn, order);
    if (head != kNoFrame) {
        node(head)->prev = pfn;
    }
    m_lists[z][order] = pfn;
    m_nonempty[z] |= 1u << order;
    m_free[order].set((pfn - m_base_pfn) >> order);
    m_buddy_free += uint64_t{1} << order;
}

void FrameAllocator::remove_free(uint64_t pfn, unsigned order) {
    unsigned z = zone_of(pfn);
    FreeNode* n = node(pfn);
    if (n->check != node_check(pfn, order)) {
        panic("frames: a free frame was written to (use after free?)");
    }
    uint64_t next = n->next;
    uint64_t prev = n->prev;
    if (prev != kNoFrame) {
        node(prev)->next = next;
    } else {
        m_lists[z][order] = next;
    }
    if (next != kNoFrame) {
        node(next)->prev = prev;
    }
    if (prev == kNoFrame && next == kNoFrame) {
        m_nonempty[z] &= ~(1u << order);
    }
    n->check = 0;
    m_free[order].clear((pfn - m_base_pfn) >> order);
    m_buddy_free -= uint64_t{1} << order;
}

// Greedy split of [pfn, end) into the largest aligned blocks that stay inside one zone. The
// result is what freeing every frame and merging would give, so no merge is needed.
void FrameAllocator::free_range(uint64_t pfn, uint64_t end) {
    while (pfn < end) {
        uint64_t limit = zone_end(zone_of(pfn));
        limit = limit < end ? limit : end;
        while (pfn < limit) {
            unsigned k = pfn == 0 ? kMaxOrder : static_cast<unsigned>(__builtin_ctzll(pfn));
            k = k < kMaxOrder ? k : kMaxOrder;
            while ((uint64_t{1} << k) > limit - pfn) {
                --k;
            }
            push_free(pfn, k);
            pfn += uint64_t{1} << k;
        }
    }
}

// Frees a block into the buddy lists, merging it with its buddy as long as that is free.
void FrameAllocator::release_block(uint64_t pfn, unsigned order) {
    while (order < kMaxOrder) {
        uint64_t size = uint64_t{1} << order;
        uint64_t buddy = pfn ^ size;
        uint64_t merged = pfn & ~size;
        if (zone_of(merged) != zone_of(merged + 2 * size - 1) || buddy + size > m_end_pfn ||
            !m_free[order].test((buddy - m_base_pfn) >> order)) {
            break;
        }
        remove_free(buddy, order);
        pfn = merged;
        ++order;
    }
    push_free(pfn, order);
}

// The smallest free block of at least `order` in `zone`, split down to `order`.
bool FrameAllocator::take_from_lists(unsigned zone, unsigned order, uint64_t* pfn) {
    uint32_t mask = m_nonempty[zone] & (~0u << order);
    if (mask == 0) {
        return false;
    }
    auto k = static_cast<unsigned>(__builtin_ctz(mask));
    uint64_t p = m_lists[zone][k];
    remove_free(p, k);
    while (k > order) {
        --k;
        push_free(p + (uint64_t{1} << k), k);
    }
    *pfn = p;
    return true;
}

// A block of `order` aligned to 2^align_order frames inside [lo, hi) (one zone): for each
// order from align_order up, the lowest free block that has room for it, found through the
// free bitmaps, then carved out of that block. Blocks smaller than the alignment are not
// looked at: their alignment is not known without visiting them one by one.
bool FrameAllocator::take_in_range(unsigned order, unsigned align_order, uint64_t lo, uint64_t hi,
                                   uint64_t* pfn) {
    uint64_t need = uint64_t{1} << order;
    uint64_t align = uint64_t{1} << align_order;
    for (unsigned j = align_order; j <= kMaxOrder; ++j) {
        uint64_t idx = m_free[j].find_next((lo - m_base_pfn) >> j);
        while (idx != LevelBitmap::kNone) {
            uint64_t s = m_base_pfn + (idx << j);
            if (s >= hi) {
                break;
            }
            uint64_t e = s + (uint64_t{1} << j);
            uint64_t x = s < lo ? (lo + align - 1) & ~(align - 1) : s;
            if (x + need <= (e < hi ? e : hi)) {
                // Carve [x, x + need) out of [s, e), freeing the halves that fall away.
                remove_free(s, j);
                for (unsigned k = j; k > order;) {
                    --k;
                    uint64_t half = uint64_t{1} << k;
                    if (x >= s + half) {
                        push_free(s, k);
                        s += half;
                    } else {
                        push_free(s + half, k);
                    }
                }
                *pfn = x;
                return true;
            }
            if (s >= lo) {
                break; // every later block starts higher still
            }
            idx = m_free[j].find_next(idx + 1);
        }
    }
    return false;
}

bool FrameAllocator::take_block(const FrameRequest& request, unsigned align_order, uint64_t lo,
                                uint64_t hi, uint64_t* pfn) {
    for (unsigned z = kZoneCount; z-- > 0;) {
        uint64_t zlo = zone_start(z) > m_base_pfn ? zone_start(z) : m_base_pfn;
        uint64_t zhi = zone_end(z) < m_end_pfn ? zone_end(z) : m_end_pfn;
        bool whole_zone = lo <= zlo && hi >= zhi;
        zlo = lo > zlo ? lo : zlo;
        zhi = hi < zhi ? hi : zhi;
        if (zlo >= zhi) {
            continue;
        }
        if (whole_zone && align_order == request.order) {
            if (take_from_lists(z, request.order, pfn)) {
                return true;
            }
        } else if (take_in_range(request.order, align_order, zlo, zhi, pfn)) {
            return true;
        }
    }
    return false;
}

void FrameAllocator::mark_held(uint64_t pfn, uint8_t value) {
    set_head(pfn, true);
    set_info(pfn, value);
}

bool FrameAllocator::buddy_consistent() const {
    int64_t used = 0;
    for (int64_t u : m_used) {
        used += u;
    }
    return static_cast<int64_t>(m_buddy_free + m_reserved) + m_in_caches + used ==
           static_cast<int64_t>(m_total);
}

namespace {
template <typename Cache>
bool cache_consistent(const Cache& c) {
    int64_t used = 0;
    for (int64_t u : c.used) {
        used += u;
    }
    return static_cast<int64_t>(c.count + c.huge_count * kHugeFrames) + used == c.held;
}
} // namespace

// --- Initialisation. ---

uint64_t FrameAllocator::metadata_bytes(const FrameArea* areas, size_t count) {
    if (count == 0) {
        return 0;
    }
    uint64_t base = frame_number(areas[0].base) & ~((uint64_t{1} << kMaxOrder) - 1);
    return metadata_frames(frame_number(areas[count - 1].end) - base) << kFrameShift;
}

BOOT_CODE Result<void> FrameAllocator::init(const FrameArea* areas, size_t count,
                                            BumpAllocator& bump, uint64_t reserved_frames) {
    m_ready = false;
    if (count == 0 || bump.retired()) {
        return Error::InvalidArgument;
    }
    for (size_t i = 0; i < count; ++i) {
        if (!areas[i].base.is_aligned(kFrameSize) || !areas[i].end.is_aligned(kFrameSize) ||
            areas[i].end <= areas[i].base || (i > 0 && areas[i].base < areas[i - 1].end)) {
            return Error::InvalidArgument;
        }
    }
    uint64_t base = frame_number(areas[0].base) & ~((uint64_t{1} << kMaxOrder) - 1);
    uint64_t end = frame_number(areas[count - 1].end);
    uint64_t span = end - base;
    uint64_t frames = metadata_frames(span);
    hal::PhysAddr meta = TRY(bump.alloc(frames, FrameOwner::FrameMetadata));
    bump.retire();

    // NOTE: the direct map is one fixed offset (ARCHITECTURE.md, Memory), so it is read once
    // here (and again by rebase_direct_map() when it moves): a hal::phys_to_virt() call on
    // every link would cost more than the link.
    m_direct_map = reinterpret_cast<uintptr_t>(hal::phys_to_virt(hal::PhysAddr(0)));
    m_base_pfn = base;
    m_end_pfn = end;
    m_meta_base = meta;
    m_meta_bytes = frames << kFrameShift;
    auto* words = reinterpret_cast<uint64_t*>(m_direct_map + meta.value());
    m_heads = words;
    __builtin_memset(m_heads, 0, heads_words(span) * sizeof(uint64_t));
    words += heads_words(span);
    for (unsigned k = 0; k < kOrderCount; ++k) {
        m_free[k].init(words, free_bits(span, k));
        words += LevelBitmap::words_needed(free_bits(span, k));
    }
    // NOTE: the info bytes are not cleared: a byte is only read where m_heads says it was
    // written, which keeps initialisation at 3 bits per frame instead of 11.
    m_info = reinterpret_cast<uint8_t*>(words);

    for (unsigned z = 0; z < kZoneCount; ++z) {
        m_nonempty[z] = 0;
    }
    m_buddy_free = 0;
    m_peak_taken = 0;
    m_in_caches = 0;
    for (int64_t& u : m_used) {
        u = 0;
    }
    m_cpus = hal::cpu_count() < kMaxCpus ? hal::cpu_count() : kMaxCpus;
    for (uint32_t i = 0; i < kMaxCpus; ++i) {
        Cache& c = m_caches[i];
        c.locked = false;
        c.count = 0;
        c.huge_count = 0;
        c.held = 0;
        for (int64_t& u : c.used) {
            u = 0;
        }
    }

    // Hand-over: every frame of a bump run is an allocated frame of the run's owner; every
    // other frame of the areas is free.
    const uint64_t meta_pfn = frame_number(meta);
    const BumpRun* runs = bump.runs();
    size_t run = 0;
    uint64_t area_frames = 0;
    for (size_t i = 0; i < count; ++i) {
        uint64_t p = frame_number(areas[i].base);
        uint64_t e = frame_number(areas[i].end);
        area_frames += e - p;
        while (run < bump.run_count() && frame_number(runs[run].base) < e) {
            uint64_t rs = frame_number(runs[run].base);
            uint64_t re = rs + runs[run].frames;
            if (rs < p || re > e) {
                return Error::InvalidArgument; // the runs do not come from these areas
            }
            free_range(p, rs);
            uint8_t v = held_info(runs[run].owner, 0);
            for (uint64_t f = rs; f < re; ++f) {
                // The allocator's own metadata is used but is no block: nobody can free it.
                if (f - meta_pfn >= frames) {
                    mark_held(f, v);
                }
            }
            m_used[static_cast<size_t>(runs[run].owner)] += static_cast<int64_t>(runs[run].frames);
            p = re;
            ++run;
        }
        free_range(p, e);
    }
    if (run != bump.run_count()) {
        return Error::InvalidArgument;
    }
    m_reserved = reserved_frames;
    m_total = area_frames + reserved_frames;
    note_taken();
    m_ready = true;
    ASSERT(buddy_consistent());
    return {};
}

void FrameAllocator::rebase_direct_map() {
    auto guard = m_lock.lock_irqsave();
    if (!m_ready) {
        return;
    }
    auto now = reinterpret_cast<uintptr_t>(hal::phys_to_virt(hal::PhysAddr(0)));
    auto delta = static_cast<intptr_t>(now - m_direct_map);
    m_direct_map = now;
    m_heads = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(m_heads) +
                                          static_cast<uintptr_t>(delta));
    m_info = reinterpret_cast<uint8_t*>(reinterpret_cast<uintptr_t>(m_info) +
                                        static_cast<uintptr_t>(delta));
    for (LevelBitmap& b : m_free) {
        b.rebase(delta);
    }
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
    Cache& c = m_caches[hal::cpu_index()];
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
    Cache& c = m_caches[hal::cpu_index()];
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

// Under the lock, after frames left the buddy allocator: the high-water mark of frames out of
// it (used, or waiting in a per-CPU cache). Only the slow paths take frames from the buddy
// allocator, so the fast path pays nothing for it.
void FrameAllocator::note_taken() {
    uint64_t taken = m_total - m_reserved - m_buddy_free;
    if (taken > m_peak_taken) {
        m_peak_taken = taken;
    }
}

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
        Cache& c = m_caches[i];
        if ((__atomic_load_n(&c.count, __ATOMIC_RELAXED) != 0 ||
             __atomic_load_n(&c.huge_count, __ATOMIC_RELAXED) != 0) &&
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
            Cache& c = m_caches[hal::cpu_index()];
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

// --- Accounting. ---

FrameStats FrameAllocator::stats() {
    FrameStats s;
    auto guard = m_lock.lock_irqsave();
    s.total = m_total;
    s.reserved = m_reserved;
    s.metadata_bytes = m_meta_bytes;
    int64_t used[kFrameOwnerCount];
    for (size_t o = 0; o < kFrameOwnerCount; ++o) {
        used[o] = m_used[o];
    }
    for (uint32_t i = 0; i < m_cpus; ++i) {
        const Cache& c = m_caches[i];
        s.cached += __atomic_load_n(&c.count, __ATOMIC_RELAXED) +
                    __atomic_load_n(&c.huge_count, __ATOMIC_RELAXED) * kHugeFrames;
        for (size_t o = 0; o < kFrameOwnerCount; ++o) {
            used[o] += __atomic_load_n(&c.used[o], __ATOMIC_RELAXED);
        }
    }
    s.free = m_buddy_free + s.cached;
    s.peak_taken = m_peak_taken;
    for (size_t o = 0; o < kFrameOwnerCount; ++o) {
        s.used_by[o] = used[o] > 0 ? static_cast<uint64_t>(used[o]) : 0;
        s.used += s.used_by[o];
    }
    return s;
}

uint64_t FrameAllocator::free_frames_hint() const {
    uint64_t free = __atomic_load_n(&m_buddy_free, __ATOMIC_RELAXED);
    for (uint32_t i = 0; i < m_cpus; ++i) {
        const Cache& c = m_caches[i];
        free += __atomic_load_n(&c.count, __ATOMIC_RELAXED) +
                uint64_t{__atomic_load_n(&c.huge_count, __ATOMIC_RELAXED)} * kHugeFrames;
    }
    return free;
}

bool FrameAllocator::quiescent() const {
    if (m_lock.is_locked()) {
        return false;
    }
    for (uint32_t i = 0; i < m_cpus; ++i) {
        if (__atomic_load_n(&m_caches[i].locked, __ATOMIC_RELAXED)) {
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
        const Cache& c = m_caches[i];
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
        const Cache& c = m_caches[i];
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
