// The heap's slabs: a run of 1 to 8 chunk pages cut into objects of one size class, with the
// free list in the objects themselves. A class's slabs with a free object are linked as its
// partial slabs; an emptied slab goes back to its chunk unless it is the class's only partial
// one. Everything here runs with m_lock held.

#include "heap_classes.hpp"
#include "heap_layout.hpp"
#include "heap_poison.hpp"

#include <core/mm/heap.hpp>

namespace core::mm {

using namespace heap_detail;

void Heap::link_partial(unsigned cls, ChunkHeader* h, uint64_t page) {
    PageDesc& d = desc(h, page);
    uint32_t self = page_number(pa_of(h), page);
    d.next = static_cast<uint32_t>(m_partial[cls]);
    d.prev = 0;
    if (m_partial[cls] != 0) {
        PageRef r = split(m_partial[cls]);
        desc(header_of(r.chunk_pa), r.page).prev = self;
    }
    m_partial[cls] = self;
}

void Heap::unlink_partial(unsigned cls, ChunkHeader* h, uint64_t page) {
    PageDesc& d = desc(h, page);
    if (d.prev != 0) {
        PageRef r = split(d.prev);
        desc(header_of(r.chunk_pa), r.page).next = d.next;
    } else {
        m_partial[cls] = d.next;
    }
    if (d.next != 0) {
        PageRef r = split(d.next);
        desc(header_of(r.chunk_pa), r.page).prev = d.prev;
    }
    d.next = d.prev = 0;
}

Result<bool> Heap::new_slab_locked(unsigned cls) {
    uint32_t pages = kTables.slab_pages[cls];
    ChunkHeader* h = nullptr;
    uint64_t page = TRY(take_run_locked(pages, &h));
    set_run(h->page, page, pages, kPageSlab);
    PageDesc& d = desc(h, page);
    d.cls = static_cast<uint8_t>(cls);
    d.in_use = 0;
    d.free_off = 0;
    uint32_t size = kClassSize[cls];
    uint32_t n = kTables.objects[cls];
    auto* base = static_cast<uint8_t*>(va_of(pa_of(h) + page * kPage));
    for (uint32_t i = 0; i < n; ++i) {
        auto* obj = reinterpret_cast<FreeObject*>(base + i * size);
        obj->next = i + 1 < n ? reinterpret_cast<FreeObject*>(base + (i + 1) * size) : nullptr;
#ifdef DUET_DEBUG
        poison(obj, size);
#endif
    }
    link_partial(cls, h, page);
    ++m_slabs[cls];
    m_slab_pages += pages;
    return true;
}

Result<void*> Heap::alloc_small_locked(unsigned cls) {
    if (m_partial[cls] == 0) {
        TRY(new_slab_locked(cls));
    }
    PageRef r = split(m_partial[cls]);
    ChunkHeader* h = header_of(r.chunk_pa);
    PageDesc& d = desc(h, r.page);
    auto* base = static_cast<uint8_t*>(va_of(r.chunk_pa + r.page * kPage));
    auto* obj = reinterpret_cast<FreeObject*>(base + d.free_off);
    FreeObject* next = obj->next;
    d.free_off = next != nullptr ? static_cast<uint16_t>(reinterpret_cast<uint8_t*>(next) - base)
                                 : kNoObject;
    ++d.in_use;
    if (d.free_off == kNoObject) {
        unlink_partial(cls, h, r.page);
    }
    ++m_taken[cls];
    return static_cast<void*>(obj);
}

void Heap::free_small_locked(FreeObject* obj) {
    uint64_t pa = pa_of(obj);
    ChunkHeader* h = header_of(pa);
    uint64_t page = (pa - chunk_base(pa)) >> 12;
    if (desc(h, page).kind == kPageTail) {
        page -= desc(h, page).pages;
    }
    PageDesc& d = desc(h, page);
    unsigned cls = d.cls;
    auto* base = static_cast<uint8_t*>(va_of(chunk_base(pa) + page * kPage));
    bool was_full = d.free_off == kNoObject;
    obj->next = was_full ? nullptr : reinterpret_cast<FreeObject*>(base + d.free_off);
    d.free_off = static_cast<uint16_t>(reinterpret_cast<uint8_t*>(obj) - base);
    --d.in_use;
    --m_taken[cls];
    if (was_full) {
        link_partial(cls, h, page);
    }
    // An empty slab goes back to its chunk, unless it is the only partial one of its class.
    if (d.in_use == 0 && (m_partial[cls] != page_number(chunk_base(pa), page) || d.next != 0)) {
        unlink_partial(cls, h, page);
        --m_slabs[cls];
        m_slab_pages -= kTables.slab_pages[cls];
        release_run_locked(h, page);
    }
}

} // namespace core::mm
