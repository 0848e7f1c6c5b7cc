#pragma once

// How the heap lays out its memory, private to core/mm/heap*.cpp: a 1 MiB chunk's header page
// (the chunk's info and a description of each other page), runs of pages, free objects, and
// the lookups from an address to its chunk and page. Inline, so that the fast paths in heap.cpp
// make no call for them.

#include <core/lib/compiler.hpp>
#include <core/mm/frame.hpp>
#include <core/mm/heap.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core::mm {

namespace heap_detail {

inline constexpr uint64_t kPage = kFrameSize;
inline constexpr uint64_t kChunkPages = kHeapChunkBytes / kPage; // page 0 is the header
inline constexpr uint64_t kUsablePages = kChunkPages - 1;

inline constexpr uint32_t kMagic = 0x4845'4150; // "HEAP"
inline constexpr uint8_t kChunkNormal = 1;
inline constexpr uint8_t kChunkHuge = 2;

// What a chunk page is. A run's first page says what the run is and how long; every other
// page of it is a Tail that says how far back its first page is.
inline constexpr uint8_t kPageFree = 1;
inline constexpr uint8_t kPageSlab = 2;
inline constexpr uint8_t kPageLarge = 3;
inline constexpr uint8_t kPageTail = 4;

inline constexpr uint16_t kNoObject = 0xFFFF;

} // namespace heap_detail

struct ChunkInfo {
    uint32_t magic;
    uint8_t kind;
    uint8_t order; // a huge block's order
    uint16_t free_pages;
    uint32_t next; // page number of the next chunk (or huge block) in its list, or 0
    uint32_t prev;
};

struct Heap::PageDesc {
    uint8_t kind;
    uint8_t cls;
    uint16_t pages;    // a run's first page: its length; a tail: the distance to the first page
    uint16_t in_use;   // slab: objects out of it (to callers or caches)
    uint16_t free_off; // slab: offset of its first free object, or kNoObject
    uint32_t next;     // slab: page number of the next partial slab of its class, or 0
    uint32_t prev;
};

struct Heap::ChunkHeader {
    ChunkInfo info;
    PageDesc page[heap_detail::kUsablePages]; // page[i] describes chunk page i + 1

    static_assert(sizeof(PageDesc) == 16 && sizeof(ChunkInfo) == 16);
    // free() reads a description's kind and class as its first two bytes.
    static_assert(offsetof(PageDesc, kind) == 0 && offsetof(PageDesc, cls) == 1);
    static_assert(static_cast<uint8_t>(heap_detail::kMagic) != heap_detail::kPageSlab);
};

struct Heap::FreeObject {
    FreeObject* next;
    uint64_t tag; // debug builds
};

namespace heap_detail {

ALWAYS_INLINE uint64_t chunk_base(uint64_t pa) {
    return pa & ~(kHeapChunkBytes - 1);
}

// A page by its page number (pa >> 12): its chunk and its index in the chunk.
struct PageRef {
    uint64_t chunk_pa;
    uint64_t page;
};

inline PageRef split(uint64_t page_number) {
    return {chunk_base(page_number << 12), page_number & (kChunkPages - 1)};
}

inline uint32_t page_number(uint64_t chunk_pa, uint64_t page) {
    return static_cast<uint32_t>((chunk_pa >> 12) + page);
}

// Marks pages [page, page + pages) of `h` as one run whose first page is `head`.
template <typename Desc>
void set_run(Desc* descs, uint64_t page, uint64_t pages, uint8_t kind) {
    Desc& head = descs[page - 1];
    head.kind = kind;
    head.pages = static_cast<uint16_t>(pages);
    for (uint64_t i = 1; i < pages; ++i) {
        Desc& t = descs[page + i - 1];
        t.kind = kPageTail;
        t.pages = static_cast<uint16_t>(i);
    }
}

} // namespace heap_detail

inline Heap::ChunkHeader* Heap::header_of(uint64_t pa) const {
    return static_cast<ChunkHeader*>(va_of(heap_detail::chunk_base(pa)));
}

inline Heap::PageDesc& Heap::desc(ChunkHeader* h, uint64_t page) const {
    return h->page[page - 1];
}

} // namespace core::mm
