// Setting the frame allocator up: the layout of its metadata, the hand-over from the bump
// allocator (every frame it gave out becomes an allocated frame of its owner, every other
// frame of the areas a free block, as large as fits), and moving to a new direct map.

#include "frame_allocator_internal.hpp"

#include <core/lib/compiler.hpp>
#include <core/lib/panic.hpp>
#include <core/mm/frame_allocator.hpp>

#include <hal/cpu.hpp>
#include <hal/mmu.hpp>

namespace core::mm {

using namespace frame_detail;

namespace {

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

} // namespace

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
    // NOTE: the machine's CPUs' caches only, the only ones anything reads. The kernel's are in
    // the CPUs' 1.6 KB core::Cpu entries: clearing all kMaxCpus of them wrote 100 pages on a
    // machine of any size (in a simulator run forked by a swarm, each a copy-on-write fault:
    // a default.scn seed took 14.1-14.9 ms of host CPU with them, 12.3-12.8 ms without).
    for (uint32_t i = 0; i < m_cpus; ++i) {
        Cache& c = cache(i);
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

} // namespace core::mm
