#include <core/lib/compiler.hpp>
#include <core/lib/log.hpp>
#include <core/mm/frame_allocator.hpp>
#include <core/mm/heap.hpp>

#include <hal/cpu.hpp>
#include <hal/fault.hpp>
#include <hal/irq.hpp>
#include <hal/mmu.hpp>

namespace core::mm {

namespace {

constexpr uint64_t kPage = kFrameSize;
constexpr uint64_t kChunkPages = kHeapChunkBytes / kPage; // page 0 is the header
constexpr uint64_t kUsablePages = kChunkPages - 1;
// Page numbers (pa >> 12) are kept in 32 bits: chunks and blocks stay below 16 TiB.
constexpr hal::PhysAddr kHeapPhysLimit{uint64_t{1} << 44};

constexpr uint32_t kMagic = 0x4845'4150; // "HEAP"
constexpr uint8_t kChunkNormal = 1;
constexpr uint8_t kChunkHuge = 2;

// What a chunk page is. A run's first page says what the run is and how long; every other
// page of it is a Tail that says how far back its first page is.
constexpr uint8_t kPageFree = 1;
constexpr uint8_t kPageSlab = 2;
constexpr uint8_t kPageLarge = 3;
constexpr uint8_t kPageTail = 4;

constexpr uint16_t kNoObject = 0xFFFF;

constexpr uint32_t kClassSize[kHeapClassCount] = {
    16,  32,  48,  64,  80,  96,  112, 128,  160,  192,  224,  256,
    320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048,
};

// The fewest pages (1, 2, 4 or 8) whose slab wastes at most an eighth.
constexpr uint32_t slab_pages_for(uint32_t size) {
    for (uint32_t p = 1; p < 8; p *= 2) {
        uint32_t bytes = p * static_cast<uint32_t>(kPage);
        if ((bytes % size) * 8 <= bytes) {
            return p;
        }
    }
    return 8;
}

// Per-CPU cache bounds: how many free objects a CPU keeps per class, and how many move at
// once between it and the slabs.
constexpr uint32_t cache_capacity(uint32_t size) {
    return size <= 256 ? 64 : size <= 1024 ? 32 : 16;
}

// What the fast paths need of a class, in one place.
struct ClassInfo {
    uint32_t size;
    uint16_t objects;  // per slab
    uint16_t capacity; // of a per-CPU list
    // ceil(2^32 / size): x / size == (x * reciprocal) >> 32 for every offset in a slab, so
    // that free() needs no division.
    uint64_t reciprocal;
};

struct ClassTables {
    ClassInfo info[kHeapClassCount];
    uint8_t by_16[Heap::kMaxSmall / 16 + 1]; // class of a size, by (size + 15) / 16
    uint8_t pow2[Heap::kMaxSmall / 16 + 1];  // the same for power-of-two classes only
    uint32_t slab_pages[kHeapClassCount];
    uint32_t objects[kHeapClassCount];
    uint32_t capacity[kHeapClassCount];
};

constexpr ClassTables make_tables() {
    ClassTables t{};
    for (uint32_t n = 0; n <= Heap::kMaxSmall / 16; ++n) {
        uint32_t bytes = n * 16;
        uint8_t c = 0;
        while (kClassSize[c] < bytes) {
            ++c;
        }
        t.by_16[n] = c;
        uint8_t p = c;
        while ((kClassSize[p] & (kClassSize[p] - 1)) != 0) {
            ++p;
        }
        t.pow2[n] = p;
    }
    for (size_t c = 0; c < kHeapClassCount; ++c) {
        t.slab_pages[c] = slab_pages_for(kClassSize[c]);
        t.objects[c] = t.slab_pages[c] * static_cast<uint32_t>(kPage) / kClassSize[c];
        t.capacity[c] = cache_capacity(kClassSize[c]);
        t.info[c].size = kClassSize[c];
        t.info[c].objects = static_cast<uint16_t>(t.objects[c]);
        t.info[c].capacity = static_cast<uint16_t>(t.capacity[c]);
        t.info[c].reciprocal = ((uint64_t{1} << 32) + kClassSize[c] - 1) / kClassSize[c];
    }
    return t;
}

// Checks the reciprocals against division for every offset of every slab, at compile time.
constexpr bool reciprocals_exact(const ClassTables& t) {
    for (size_t c = 0; c < kHeapClassCount; ++c) {
        for (uint64_t x = 0; x <= t.slab_pages[c] * kPage; x += 8) {
            if (((x * t.info[c].reciprocal) >> 32) != x / kClassSize[c]) {
                return false;
            }
        }
    }
    return true;
}

constexpr ClassTables kTables = make_tables();
static_assert(kTables.by_16[1] == 0 && kTables.by_16[128] == kHeapClassCount - 1);
static_assert(kTables.objects[0] == 256 && kTables.slab_pages[kHeapClassCount - 1] == 1);
static_assert(reciprocals_exact(kTables));

ALWAYS_INLINE unsigned class_of(size_t bytes) {
    return kTables.by_16[(bytes + 15) >> 4];
}

#ifdef DUET_DEBUG
// A freed object: word 1 holds kFreeTag ^ its address, the bytes after it kPoison. A write
// after free breaks one or the other; a second free finds the tag.
constexpr uint64_t kFreeTag = 0xF4EE'0B1E'C7DE'AD00;
constexpr uint8_t kPoison = 0xDB;
#endif

} // namespace

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
    PageDesc page[kUsablePages]; // page[i] describes chunk page i + 1

    static_assert(sizeof(PageDesc) == 16 && sizeof(ChunkInfo) == 16);
    // free() reads a description's kind and class as its first two bytes.
    static_assert(offsetof(PageDesc, kind) == 0 && offsetof(PageDesc, cls) == 1);
    static_assert(static_cast<uint8_t>(kMagic) != kPageSlab);
};

struct Heap::FreeObject {
    FreeObject* next;
    uint64_t tag; // debug builds
};

namespace {

constinit Heap s_heap;

ALWAYS_INLINE uint64_t chunk_base(uint64_t pa) {
    return pa & ~(kHeapChunkBytes - 1);
}

#ifdef DUET_DEBUG
uint64_t free_tag(const void* p) {
    return kFreeTag ^ reinterpret_cast<uintptr_t>(p);
}

void poison(void* p, uint32_t size) {
    auto* obj = static_cast<uint64_t*>(p);
    obj[1] = free_tag(p);
    __builtin_memset(static_cast<uint8_t*>(p) + 16, kPoison, size - 16);
}

// Checks the poison of a free object about to be handed out, and clears its tag.
void unpoison(void* p, uint32_t size) {
    auto* obj = static_cast<uint64_t*>(p);
    bool intact = obj[1] == free_tag(p);
    const uint8_t* bytes = static_cast<const uint8_t*>(p);
    for (uint32_t i = 16; i < size && intact; ++i) {
        intact = bytes[i] == kPoison;
    }
    if (!intact) [[unlikely]] {
        LogLine("heap")
            .str("use after free: object at ")
            .hex(reinterpret_cast<uintptr_t>(p))
            .str(" (")
            .dec(size)
            .str(" bytes) was written after it was freed");
        panic("heap corrupted");
    }
    obj[1] = 0;
}
#endif

} // namespace

// --- Set-up and lookups. ---

Result<void> Heap::init(const FrameSource& frames) {
    static_assert(sizeof(ChunkHeader) == kPage);
    if (m_ready || !frames.valid()) {
        return Error::InvalidArgument;
    }
    m_frames = frames;
    m_direct_map = reinterpret_cast<uintptr_t>(hal::phys_to_virt(hal::PhysAddr(0)));
    m_ready = true;
    return {};
}

Heap::ChunkHeader* Heap::header_of(uint64_t pa) const {
    return static_cast<ChunkHeader*>(va_of(chunk_base(pa)));
}

Heap::PageDesc& Heap::desc(ChunkHeader* h, uint64_t page) const {
    return h->page[page - 1];
}

namespace {

struct PageRef {
    uint64_t chunk_pa;
    uint64_t page;
};

PageRef split(uint64_t page_number) {
    return {chunk_base(page_number << 12), page_number & (kChunkPages - 1)};
}

uint32_t page_number(uint64_t chunk_pa, uint64_t page) {
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

} // namespace

Heap::CpuCache* Heap::create_cache(uint32_t cpu) {
    // NOTE: interrupts are off and only this CPU creates its own cache, so nobody races us.
    auto guard = m_lock.lock_irqsave();
    Result<void*> r = alloc_small_locked(class_of(sizeof(CpuCache)));
    if (!r.ok()) {
        return nullptr;
    }
#ifdef DUET_DEBUG
    unpoison(r.value(), kClassSize[class_of(sizeof(CpuCache))]);
#endif
    auto* c = static_cast<CpuCache*>(r.value());
    __builtin_memset(static_cast<void*>(c), 0, sizeof(CpuCache));
    __atomic_store_n(&m_cpus[cpu], c, __ATOMIC_RELEASE);
    return c;
}

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

// --- Slabs. ---

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

Result<void> Heap::refill_locked(Bin& bin, unsigned cls) {
    uint32_t batch = kTables.capacity[cls] / 2;
    for (uint32_t i = 0; i < batch; ++i) {
        Result<void*> r = alloc_small_locked(cls);
        if (!r.ok()) {
            if (i == 0) {
                return r.error();
            }
            break;
        }
        auto* obj = static_cast<FreeObject*>(r.value());
        obj->next = bin.head;
        bin.head = obj;
        ++bin.count;
    }
    return {};
}

void Heap::drain_locked(Bin& bin, uint32_t count) {
    for (uint32_t i = 0; i < count && bin.head != nullptr; ++i) {
        FreeObject* obj = bin.head;
        bin.head = obj->next;
        --bin.count;
        free_small_locked(obj);
    }
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

// --- The interface. ---

ALWAYS_INLINE void* Heap::take_first(Bin& bin, unsigned cls, hal::IrqFlags flags) {
    FreeObject* obj = bin.head;
    bin.head = obj->next;
    --bin.count;
    ++bin.allocs;
    hal::irq_restore(flags);
#ifdef DUET_DEBUG
    unpoison(obj, kClassSize[cls]);
#else
    (void)cls;
#endif
    return obj;
}

// No per-CPU cache yet (its first allocation on this CPU), an empty list, or no memory to be
// had: everything alloc()'s fast path leaves to it. Entered with interrupts off, `flags` being
// what irq_save() returned; restores them.
Result<void*> Heap::alloc_small(unsigned cls, hal::IrqFlags flags) {
    if (!m_ready) [[unlikely]] {
        hal::irq_restore(flags);
        return Error::InvalidArgument;
    }
    CpuCache* c = m_cpus[hal::cpu_index()];
    if (c == nullptr) {
        c = create_cache(hal::cpu_index());
    }
    if (c == nullptr) {
        hal::irq_restore(flags);
        auto guard = m_lock.lock_irqsave();
        Result<void*> r = alloc_small_locked(cls);
        if (!r.ok()) {
            ++m_failures;
            return r.error();
        }
        ++m_locked_allocs;
#ifdef DUET_DEBUG
        unpoison(r.value(), kClassSize[cls]);
#endif
        return r;
    }
    Bin& bin = c->bins[cls];
    if (bin.head == nullptr) {
        bool refilled = false;
        {
            auto guard = m_lock.lock_irqsave();
            refilled =
                !hal::inject_fault(hal::FaultPoint::HeapAlloc) && refill_locked(bin, cls).ok();
            m_failures += refilled ? 0 : 1;
        }
        if (!refilled) {
            hal::irq_restore(flags);
            return Error::OutOfMemory;
        }
    }
    return take_first(bin, cls, flags);
}

// The common case, a small object with the default alignment: interrupts off, this CPU's list
// for the class, interrupts back on. Everything else is out of line (alloc_small() takes over
// with interrupts still off), so that GCC saves next to no registers here: that halved the
// fast path's cost (docs/virtual-memory.md, "Performance").
Result<void*> Heap::alloc(size_t bytes, size_t align) {
    if (bytes - 1 < kMaxSmall && align <= kMinAlign) [[likely]] {
        unsigned cls = class_of(bytes);
        hal::IrqFlags flags = hal::irq_save();
        // NOTE: only this CPU stores its own entry (with interrupts off): a plain load will do.
        CpuCache* c = m_cpus[hal::cpu_index()];
        FreeObject* obj = c != nullptr ? c->bins[cls].head : nullptr;
        if (obj == nullptr) [[unlikely]] {
            return alloc_small(cls, flags);
        }
        return take_first(c->bins[cls], cls, flags);
    }
    return alloc_other(bytes, align);
}

// Aligned, large and huge allocations.
Result<void*> Heap::alloc_other(size_t bytes, size_t align) {
    if (align > kMinAlign) {
        if ((align & (align - 1)) != 0 || align > kMaxAlign) {
            return Error::InvalidArgument;
        }
        bytes = bytes < align ? align : bytes;
        if (bytes <= kMaxSmall) {
            return alloc_small(kTables.pow2[(bytes + 15) >> 4], hal::irq_save());
        }
    }
    if (bytes <= kMaxSmall) {
        return alloc_small(0, hal::irq_save()); // zero bytes: one byte
    }
    if (!m_ready) [[unlikely]] {
        return Error::InvalidArgument;
    }
    if (hal::inject_fault(hal::FaultPoint::HeapAlloc)) {
        auto guard = m_lock.lock_irqsave();
        ++m_failures;
        return Error::OutOfMemory;
    }
    uint64_t pages = (bytes + kPage - 1) / kPage;
    if (pages <= kUsablePages) {
        auto guard = m_lock.lock_irqsave();
        Result<void*> r = alloc_pages_locked(pages);
        if (!r.ok()) {
            ++m_failures;
        }
        return r;
    }
    Result<void*> r = alloc_huge(bytes);
    if (!r.ok()) {
        auto guard = m_lock.lock_irqsave();
        ++m_failures;
    }
    return r;
}

// An object of class `cls` at `in_slab` bytes into its slab: checked to be an object's start,
// then onto this CPU's list for the class (or the slab itself when the CPU has no cache yet).
ALWAYS_INLINE Result<void> Heap::free_object(void* p, unsigned cls, uint64_t in_slab) {
    const ClassInfo& ci = kTables.info[cls];
    uint64_t index = (in_slab * ci.reciprocal) >> 32;
    if (index * ci.size != in_slab || index >= ci.objects) [[unlikely]] {
        return Error::ForeignAddress;
    }
    auto* obj = static_cast<FreeObject*>(p);
#ifdef DUET_DEBUG
    if (obj->tag == free_tag(obj)) {
        return Error::DoubleFree;
    }
    poison(obj, ci.size);
#endif
    hal::IrqFlags flags = hal::irq_save();
    CpuCache* c = m_cpus[hal::cpu_index()];
    if (c == nullptr) [[unlikely]] {
        hal::irq_restore(flags);
        free_uncached(obj);
        return {};
    }
    Bin& bin = c->bins[cls];
    obj->next = bin.head;
    bin.head = obj;
    ++bin.count;
    ++bin.frees;
    if (bin.count > ci.capacity) [[unlikely]] {
        drain_half(bin, cls);
    }
    hal::irq_restore(flags);
    return {};
}

// The slow ends of free_object(), out of line so that free()'s fast path saves no registers.
NOINLINE void Heap::drain_half(Bin& bin, unsigned cls) {
    auto guard = m_lock.lock_irqsave();
    drain_locked(bin, kTables.capacity[cls] / 2);
}

NOINLINE void Heap::free_uncached(FreeObject* obj) {
    auto guard = m_lock.lock_irqsave();
    free_small_locked(obj);
    ++m_locked_frees;
}

// The common case, a slab object: one look at its page's description, then this CPU's list.
Result<void> Heap::free(void* p) {
    if (p == nullptr) [[unlikely]] {
        return {};
    }
    uint64_t pa = pa_of(p);
    ChunkHeader* h = header_of(pa);
    uint64_t offset = pa - chunk_base(pa);
    // NOTE: the header is 256 slots of 16 bytes: the chunk's info, then page 1's description
    // and so on; read as bytes, so that page 0 reads the info's first byte, which is never
    // kPageSlab. free_slow() sorts that out, and everything else.
    const uint8_t* slot = reinterpret_cast<const uint8_t*>(h) + (offset >> 12) * sizeof(PageDesc);
    if (h->info.magic != kMagic || h->info.kind != kChunkNormal || slot[0] != kPageSlab)
        [[unlikely]] {
        return free_slow(p);
    }
    unsigned cls = slot[1];
    return free_object(p, cls, offset & (kPage - 1));
}

// Everything but a one-page slab's object: objects of larger slabs, pages, blocks of their
// own, null, and what the heap never handed out.
Result<void> Heap::free_slow(void* p) {
    if (p == nullptr) {
        return {};
    }
    if (!m_ready) {
        return Error::ForeignAddress;
    }
    uint64_t pa = pa_of(p);
    ChunkHeader* h = header_of(pa);
    if (h->info.magic != kMagic) {
        return Error::ForeignAddress;
    }
    uint64_t offset = pa - chunk_base(pa);
    uint64_t page = offset >> 12;
    if (h->info.kind == kChunkHuge) {
        if (offset != kPage) {
            return Error::ForeignAddress;
        }
        unsigned order = h->info.order;
        {
            auto guard = m_lock.lock_irqsave();
            if (h->info.prev != 0) {
                header_of(uint64_t{h->info.prev} << 12)->info.next = h->info.next;
            } else {
                m_huge_list = h->info.next;
            }
            if (h->info.next != 0) {
                header_of(uint64_t{h->info.next} << 12)->info.prev = h->info.prev;
            }
            h->info.magic = 0;
            m_huge_bytes -= kPage << order;
            --m_huge_count;
            ++m_locked_frees;
        }
        return m_frames.free(hal::PhysAddr(chunk_base(pa)), order);
    }
    if (page == 0) {
        return Error::ForeignAddress;
    }
    uint64_t head = page;
    if (desc(h, page).kind == kPageTail) {
        head = page - desc(h, page).pages;
    }
    const PageDesc& d = desc(h, head);
    if (d.kind == kPageLarge) {
        if (head != page || (pa & (kPage - 1)) != 0) {
            return Error::ForeignAddress;
        }
        auto guard = m_lock.lock_irqsave();
        return free_pages_locked(h, page);
    }
    if (d.kind == kPageFree) {
        return Error::DoubleFree;
    }
    if (d.kind != kPageSlab) {
        return Error::ForeignAddress;
    }
    unsigned cls = d.cls;
    return free_object(p, cls, offset - head * kPage);
}

size_t Heap::usable_size(const void* p) const {
    if (p == nullptr || !m_ready) {
        return 0;
    }
    uint64_t pa = pa_of(p);
    ChunkHeader* h = header_of(pa);
    if (h->info.magic != kMagic) {
        return 0;
    }
    if (h->info.kind == kChunkHuge) {
        return (kPage << h->info.order) - kPage;
    }
    uint64_t page = (pa - chunk_base(pa)) >> 12;
    if (page == 0) {
        return 0;
    }
    if (desc(h, page).kind == kPageTail) {
        page -= desc(h, page).pages;
    }
    const PageDesc& d = desc(h, page);
    if (d.kind == kPageSlab) {
        return kClassSize[d.cls];
    }
    return d.kind == kPageLarge ? d.pages * kPage : 0;
}

void Heap::drain_caches() {
    for (uint32_t cpu = 0; cpu < kMaxCpus; ++cpu) {
        CpuCache* c = __atomic_load_n(&m_cpus[cpu], __ATOMIC_ACQUIRE);
        if (c == nullptr) {
            continue;
        }
        // NOTE: another CPU's cache: only safe on a quiescent heap, as documented.
        auto guard = m_lock.lock_irqsave();
        for (unsigned cls = 0; cls < kHeapClassCount; ++cls) {
            drain_locked(c->bins[cls], c->bins[cls].count);
        }
    }
}

HeapStats Heap::stats() {
    HeapStats s;
    uint64_t cached[kHeapClassCount] = {};
    for (uint32_t cpu = 0; cpu < kMaxCpus; ++cpu) {
        CpuCache* c = __atomic_load_n(&m_cpus[cpu], __ATOMIC_ACQUIRE);
        if (c == nullptr) {
            continue;
        }
        for (unsigned cls = 0; cls < kHeapClassCount; ++cls) {
            cached[cls] += __atomic_load_n(&c->bins[cls].count, __ATOMIC_RELAXED);
            s.allocs += __atomic_load_n(&c->bins[cls].allocs, __ATOMIC_RELAXED);
            s.frees += __atomic_load_n(&c->bins[cls].frees, __ATOMIC_RELAXED);
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
    return __atomic_load_n(&m_chunk_count, __ATOMIC_RELAXED) * kHeapChunkBytes +
           __atomic_load_n(&m_huge_bytes, __ATOMIC_RELAXED);
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

// --- The kernel's heap. ---

Heap& heap() {
    return s_heap;
}

Result<void> init_heap(const FrameSource& frames) {
    return s_heap.init(frames);
}

void* kmalloc(size_t bytes, size_t align) {
    Result<void*> r = s_heap.alloc(bytes, align);
    return r.ok() ? r.value() : nullptr;
}

void kfree(void* p) {
    Result<void> r = s_heap.free(p);
    if (!r.ok()) [[unlikely]] {
        LogLine("heap").str("bad free of ").hex(reinterpret_cast<uintptr_t>(p));
        panic_error("kfree", r.error());
    }
}

void log_heap_stats() {
    HeapStats s = s_heap.stats();
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
