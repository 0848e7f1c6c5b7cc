// The heap's interface and its per-CPU caches: alloc() and free() with their fast paths (this
// CPU's list of free objects for the class, interrupts off, no lock), the slow paths they leave
// the rest to, the moves between a CPU's lists and the slabs, and the kernel's heap (kmalloc,
// kfree). The fast paths and everything they inline stay in this file.

#include "heap_classes.hpp"
#include "heap_layout.hpp"
#include "heap_poison.hpp"

#include <core/lib/atomic.hpp>
#include <core/lib/compiler.hpp>
#include <core/lib/log.hpp>
#include <core/mm/frame_allocator.hpp>
#include <core/mm/heap.hpp>

#include <hal/cpu.hpp>
#include <hal/fault.hpp>
#include <hal/irq.hpp>
#include <hal/mmu.hpp>

namespace core::mm {

using namespace heap_detail;

namespace {

constinit Heap s_heap;

} // namespace

// --- Set-up and this CPU's cache. ---

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

// NOTE: the one place that finds the calling CPU's cache. Callers run with interrupts off, so
// the CPU cannot change under them.
ALWAYS_INLINE Heap::CpuCache*& Heap::my_cache() {
    return m_cpus[hal::cpu_index()];
}

Heap::CpuCache* Heap::create_cache() {
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
    atomic::store<atomic::release>(&my_cache(), c);
    return c;
}

// --- Between a CPU's lists and the slabs (m_lock held). ---

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
    CpuCache* c = my_cache();
    if (c == nullptr) {
        c = create_cache();
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
        CpuCache* c = my_cache();
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
    CpuCache* c = my_cache();
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
        CpuCache* c = atomic::load<atomic::acquire>(&m_cpus[cpu]);
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

} // namespace core::mm
