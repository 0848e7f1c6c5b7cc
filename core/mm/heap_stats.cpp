// The heap's statistics and its invariant check: stats() and the hint the schedule trace
// samples, audit(), which walks every chunk, slab and per-CPU list against the counters, and
// the "heap:" lines of the report.

#include "heap_classes.hpp"
#include "heap_layout.hpp"

#include <core/lib/atomic.hpp>
#include <core/lib/log.hpp>
#include <core/mm/heap.hpp>

namespace core::mm {

using namespace heap_detail;

HeapStats Heap::stats() {
    HeapStats s;
    uint64_t cached[kHeapClassCount] = {};
    for (uint32_t cpu = 0; cpu < kMaxCpus; ++cpu) {
        CpuCache* c = atomic::load<atomic::acquire>(&m_cpus[cpu]);
        if (c == nullptr) {
            continue;
        }
        for (unsigned cls = 0; cls < kHeapClassCount; ++cls) {
            cached[cls] += atomic::load<atomic::relaxed>(&c->bins[cls].count);
            s.allocs += atomic::load<atomic::relaxed>(&c->bins[cls].allocs);
            s.frees += atomic::load<atomic::relaxed>(&c->bins[cls].frees);
        }
    }
    auto guard = m_lock.lock_irqsave();
    s.chunks = m_chunk_count;
    s.huge_bytes = m_huge_bytes;
    s.huge_count = m_huge_count;
    s.free_pages = m_free_pages;
    s.slab_pages = m_slab_pages;
    s.large_pages = m_large_pages;
    s.allocs += m_locked_allocs;
    s.frees += m_locked_frees;
    s.failures = m_failures;
    s.chunks_returned = m_chunks_returned;
    for (unsigned cls = 0; cls < kHeapClassCount; ++cls) {
        HeapClassStats& c = s.classes[cls];
        c.size = kClassSize[cls];
        c.slab_pages = kTables.slab_pages[cls];
        c.slabs = m_slabs[cls];
        c.cached = cached[cls];
        int64_t in_use = m_taken[cls] - static_cast<int64_t>(cached[cls]);
        c.in_use = in_use > 0 ? static_cast<uint64_t>(in_use) : 0;
        s.small_bytes += c.in_use * c.size;
    }
    // The per-CPU caches are heap objects themselves.
    return s;
}

uint64_t Heap::bytes_from_frames_hint() const {
    return atomic::load<atomic::relaxed>(&m_chunk_count) * kHeapChunkBytes +
           atomic::load<atomic::relaxed>(&m_huge_bytes);
}

bool Heap::audit() {
    auto guard = m_lock.lock_irqsave();
    return audit_unlocked();
}

bool Heap::audit_unlocked() const {
    uint64_t chunks = 0, free_pages = 0, slab_pages = 0, large_pages = 0;
    uint64_t slabs[kHeapClassCount] = {};
    int64_t taken[kHeapClassCount] = {};
    uint32_t prev = 0;
    for (uint64_t pn = m_chunks; pn != 0;) {
        ChunkHeader* h = header_of(pn << 12);
        if (h->info.magic != kMagic || h->info.kind != kChunkNormal || h->info.prev != prev) {
            return false;
        }
        ++chunks;
        uint64_t chunk_free = 0;
        for (uint64_t p = 1; p < kChunkPages;) {
            const PageDesc& d = desc(h, p);
            if (d.pages == 0 || p + d.pages > kChunkPages || d.kind == kPageTail) {
                return false;
            }
            for (uint64_t i = 1; i < d.pages; ++i) {
                if (desc(h, p + i).kind != kPageTail || desc(h, p + i).pages != i) {
                    return false;
                }
            }
            if (d.kind == kPageFree) {
                chunk_free += d.pages;
                // Free runs are merged: the next run is never free.
                if (p + d.pages < kChunkPages && desc(h, p + d.pages).kind == kPageFree) {
                    return false;
                }
            } else if (d.kind == kPageLarge) {
                large_pages += d.pages;
            } else if (d.kind == kPageSlab) {
                unsigned cls = d.cls;
                if (cls >= kHeapClassCount || d.pages != kTables.slab_pages[cls]) {
                    return false;
                }
                slab_pages += d.pages;
                ++slabs[cls];
                uint32_t size = kClassSize[cls];
                auto* base = static_cast<uint8_t*>(va_of(pa_of(h) + p * kPage));
                uint64_t free_objects = 0;
                if (d.free_off != kNoObject) {
                    auto* o = reinterpret_cast<FreeObject*>(base + d.free_off);
                    while (o != nullptr) {
                        uint64_t off = static_cast<uint64_t>(reinterpret_cast<uint8_t*>(o) - base);
                        if (off % size != 0 || off / size >= kTables.objects[cls] ||
                            ++free_objects > kTables.objects[cls]) {
                            return false;
                        }
                        o = o->next;
                    }
                }
                if (d.in_use + free_objects != kTables.objects[cls]) {
                    return false;
                }
                taken[cls] += d.in_use;
                // Partial exactly when something is free: walk the class's list to find it.
                bool listed = false;
                uint32_t self = page_number(pa_of(h), p);
                for (uint64_t q = m_partial[cls]; q != 0;) {
                    if (q == self) {
                        listed = true;
                        break;
                    }
                    PageRef r = split(q);
                    q = desc(header_of(r.chunk_pa), r.page).next;
                }
                if (listed != (d.free_off != kNoObject)) {
                    return false;
                }
            } else {
                return false;
            }
            p += d.pages;
        }
        if (chunk_free != h->info.free_pages) {
            return false;
        }
        free_pages += chunk_free;
        prev = static_cast<uint32_t>(pn);
        pn = h->info.next;
    }
    if (chunks != m_chunk_count || free_pages != m_free_pages || slab_pages != m_slab_pages ||
        large_pages != m_large_pages) {
        return false;
    }
    for (unsigned cls = 0; cls < kHeapClassCount; ++cls) {
        if (slabs[cls] != m_slabs[cls] || taken[cls] != m_taken[cls]) {
            return false;
        }
    }
    // Every cached object is a slab object of its bin's class.
    for (uint32_t cpu = 0; cpu < kMaxCpus; ++cpu) {
        CpuCache* c = m_cpus[cpu];
        if (c == nullptr) {
            continue;
        }
        for (unsigned cls = 0; cls < kHeapClassCount; ++cls) {
            uint32_t n = 0;
            for (FreeObject* o = c->bins[cls].head; o != nullptr; o = o->next) {
                uint64_t pa = pa_of(o);
                ChunkHeader* h = header_of(pa);
                uint64_t page = (pa - chunk_base(pa)) >> 12;
                if (h->info.magic != kMagic || page == 0) {
                    return false;
                }
                if (desc(h, page).kind == kPageTail) {
                    page -= desc(h, page).pages;
                }
                if (desc(h, page).kind != kPageSlab || desc(h, page).cls != cls ||
                    ++n > c->bins[cls].count) {
                    return false;
                }
            }
            if (n != c->bins[cls].count) {
                return false;
            }
        }
    }
    return true;
}

void log_heap_stats() {
    HeapStats s = heap().stats();
    uint64_t objects = 0;
    for (const auto& c : s.classes) {
        objects += c.in_use;
    }
    LogLine("heap")
        .dec(s.chunks)
        .str(" chunks, ")
        .size(s.huge_bytes)
        .str(" huge; pages: ")
        .dec(s.slab_pages)
        .str(" slab, ")
        .dec(s.large_pages)
        .str(" large, ")
        .dec(s.free_pages)
        .str(" free");
    LogLine("heap")
        .dec(objects)
        .str(" objects (")
        .size(s.small_bytes)
        .str("); ")
        .dec(s.allocs)
        .str(" allocs, ")
        .dec(s.frees)
        .str(" frees, ")
        .dec(s.failures)
        .str(" failed");
}

} // namespace core::mm
