// The heap's chunks and runs of pages: 1 MiB chunks taken from the frame allocator and given
// back, first-fit runs of pages inside them (merged with their free neighbours when freed),
// large allocations of whole pages, huge ones in blocks of their own, and destroy(). What
// takes or releases a run runs with m_lock held.

#include "heap_layout.hpp"
#include "heap_poison.hpp"

#include <core/mm/frame_allocator.hpp>
#include <core/mm/heap.hpp>

#include <hal/irq.hpp>

namespace core::mm {

using namespace heap_detail;

namespace {

// Page numbers (pa >> 12) are kept in 32 bits: chunks and blocks stay below 16 TiB.
constexpr hal::PhysAddr kHeapPhysLimit{uint64_t{1} << 44};

} // namespace

// --- Chunks and runs of pages. ---

Result<Heap::ChunkHeader*> Heap::grow_locked() {
    hal::PhysAddr pa = TRY(m_frames.alloc(FrameOwner::Heap, kHeapChunkOrder, kHeapPhysLimit));
    auto* h = static_cast<ChunkHeader*>(va_of(pa.value()));
    __builtin_memset(static_cast<void*>(h), 0, sizeof(ChunkHeader));
    h->info.magic = kMagic;
    h->info.kind = kChunkNormal;
    h->info.free_pages = static_cast<uint16_t>(kUsablePages);
    set_run(h->page, 1, kUsablePages, kPageFree);
    // The new chunk goes first: it is where the free pages are.
    uint32_t self = page_number(pa.value(), 0);
    h->info.next = static_cast<uint32_t>(m_chunks);
    h->info.prev = 0;
    if (m_chunks != 0) {
        header_of(m_chunks << 12)->info.prev = self;
    }
    m_chunks = self;
    ++m_chunk_count;
    m_free_pages += kUsablePages;
    return h;
}

Result<uint64_t> Heap::take_run_locked(uint64_t pages, ChunkHeader** chunk) {
    for (int attempt = 0; attempt < 2; ++attempt) {
        for (uint64_t pn = m_chunks; pn != 0;) {
            ChunkHeader* h = header_of(pn << 12);
            if (h->info.free_pages >= pages) {
                for (uint64_t p = 1; p < kChunkPages;) {
                    PageDesc& d = desc(h, p);
                    uint64_t run = d.pages;
                    if (d.kind == kPageFree && run >= pages) {
                        if (run > pages) {
                            set_run(h->page, p + pages, run - pages, kPageFree);
                        }
                        d.pages = static_cast<uint16_t>(pages);
                        h->info.free_pages = static_cast<uint16_t>(h->info.free_pages - pages);
                        m_free_pages -= pages;
                        *chunk = h;
                        return p;
                    }
                    p += run;
                }
            }
            pn = h->info.next;
        }
        if (attempt == 0) {
            TRY(grow_locked());
        }
    }
    return Error::OutOfMemory;
}

void Heap::release_run_locked(ChunkHeader* h, uint64_t page) {
    uint64_t first = page;
    uint64_t pages = desc(h, page).pages;
    h->info.free_pages = static_cast<uint16_t>(h->info.free_pages + pages);
    m_free_pages += pages;
    // Merge with the free runs on either side.
    uint64_t after = page + pages;
    if (after < kChunkPages && desc(h, after).kind == kPageFree) {
        pages += desc(h, after).pages;
    }
    if (page > 1) {
        const PageDesc& prev = desc(h, page - 1);
        uint64_t head = prev.kind == kPageTail ? page - 1 - prev.pages : page - 1;
        if (desc(h, head).kind == kPageFree) {
            pages += page - head;
            first = head;
        }
    }
    set_run(h->page, first, pages, kPageFree);
    if (h->info.free_pages == kUsablePages) {
        maybe_release_chunk_locked(h);
    }
}

void Heap::maybe_release_chunk_locked(ChunkHeader* h) {
    // Keep a chunk's worth of free pages besides this one, so that a heap that breathes around
    // a chunk boundary does not take and return a chunk every time.
    if (m_free_pages < 2 * kUsablePages) {
        return;
    }
    uint64_t pa = pa_of(h);
    if (h->info.prev != 0) {
        header_of(uint64_t{h->info.prev} << 12)->info.next = h->info.next;
    } else {
        m_chunks = h->info.next;
    }
    if (h->info.next != 0) {
        header_of(uint64_t{h->info.next} << 12)->info.prev = h->info.prev;
    }
    h->info.magic = 0;
    --m_chunk_count;
    m_free_pages -= kUsablePages;
    ++m_chunks_returned;
    MUST(m_frames.free(hal::PhysAddr(pa), kHeapChunkOrder));
}

// --- Pages and blocks. ---

Result<void*> Heap::alloc_pages_locked(uint64_t pages) {
    ChunkHeader* h = nullptr;
    uint64_t page = TRY(take_run_locked(pages, &h));
    set_run(h->page, page, pages, kPageLarge);
    m_large_pages += pages;
    ++m_locked_allocs;
    return va_of(pa_of(h) + page * kPage);
}

Result<void> Heap::free_pages_locked(ChunkHeader* h, uint64_t page) {
    PageDesc& d = desc(h, page);
    if (d.kind == kPageFree) {
        return Error::DoubleFree;
    }
    if (d.kind != kPageLarge) {
        return Error::ForeignAddress;
    }
#ifdef DUET_DEBUG
    __builtin_memset(va_of(pa_of(h) + page * kPage), kPoison, d.pages * kPage);
#endif
    m_large_pages -= d.pages;
    ++m_locked_frees;
    release_run_locked(h, page);
    return {};
}

Result<void*> Heap::alloc_huge(size_t bytes) {
    uint64_t pages = (bytes + kPage - 1) / kPage + 1; // and a header page
    unsigned order = 0;
    while ((uint64_t{1} << order) < pages) {
        ++order;
    }
    if (order > kMaxOrder) {
        return Error::OutOfMemory;
    }
    hal::PhysAddr pa = TRY(m_frames.alloc(FrameOwner::Heap, order, kHeapPhysLimit));
    auto* h = static_cast<ChunkHeader*>(va_of(pa.value()));
    h->info = {};
    h->info.magic = kMagic;
    h->info.kind = kChunkHuge;
    h->info.order = static_cast<uint8_t>(order);
    auto guard = m_lock.lock_irqsave();
    uint32_t self = page_number(pa.value(), 0);
    h->info.next = static_cast<uint32_t>(m_huge_list);
    if (m_huge_list != 0) {
        header_of(m_huge_list << 12)->info.prev = self;
    }
    m_huge_list = self;
    m_huge_bytes += kPage << order;
    ++m_huge_count;
    ++m_locked_allocs;
    return va_of(pa.value() + kPage);
}

void Heap::destroy() {
    if (!m_ready) {
        return;
    }
    auto guard = m_lock.lock_irqsave();
    for (uint64_t pn = m_chunks; pn != 0;) {
        ChunkHeader* h = header_of(pn << 12);
        uint64_t next = h->info.next;
        h->info.magic = 0;
        MUST(m_frames.free(frame_address(pn), kHeapChunkOrder));
        pn = next;
    }
    for (uint64_t pn = m_huge_list; pn != 0;) {
        ChunkHeader* h = header_of(pn << 12);
        uint64_t next = h->info.next;
        unsigned order = h->info.order;
        h->info.magic = 0;
        MUST(m_frames.free(frame_address(pn), order));
        pn = next;
    }
    m_ready = false;
    m_chunks = 0;
    m_chunk_count = 0;
    m_free_pages = 0;
    m_huge_list = 0;
    m_huge_bytes = 0;
    m_huge_count = 0;
    m_large_pages = 0;
    m_slab_pages = 0;
    m_locked_allocs = m_locked_frees = m_failures = m_chunks_returned = 0;
    for (unsigned cls = 0; cls < kHeapClassCount; ++cls) {
        m_partial[cls] = 0;
        m_slabs[cls] = 0;
        m_taken[cls] = 0;
    }
    for (uint32_t cpu = 0; cpu < kMaxCpus; ++cpu) {
        m_cpus[cpu] = nullptr;
    }
}

} // namespace core::mm
