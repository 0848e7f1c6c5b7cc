#pragma once

// The kernel heap. docs/virtual-memory.md describes it in full.
//
// - Memory comes from the frame allocator (owner Heap) in 1 MiB chunks, naturally aligned,
//   reached through the direct map. The chunk's first page describes the other 255: a run of
//   free pages, a slab, or a large allocation.
// - Small objects (up to kMaxSmall bytes) come from size classes: slabs of 1 to 8 pages cut
//   into equal objects, with the free list in the objects themselves. In front of the slabs,
//   each CPU keeps a short list of free objects per class; the common alloc and free touch
//   only that list, with interrupts off (no lock, no atomic instruction).
// - Larger objects get whole pages from a chunk; anything larger than a chunk gets a block of
//   its own from the frame allocator.
// - Debug builds poison freed objects and check the poison when they are handed out again
//   (a write after free panics), and detect a double free; every build detects a double free
//   of pages and a free of an address the heap never handed out.
// - Statistics: chunks, pages by use, objects per class, allocations and frees.

#include <core/lib/limits.hpp>
#include <core/lib/result.hpp>
#include <core/mm/frame_source.hpp>
#include <core/sync/spinlock.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core::mm {

inline constexpr uint64_t kHeapChunkBytes = uint64_t{1} << 20;
inline constexpr unsigned kHeapChunkOrder = 8; // 256 frames
inline constexpr size_t kHeapClassCount = 24;

struct HeapClassStats {
    uint32_t size = 0;       // object size
    uint32_t slab_pages = 0; // pages per slab
    uint64_t slabs = 0;      // slabs of this class
    uint64_t in_use = 0;     // objects handed out and not freed
    uint64_t cached = 0;     // free objects in per-CPU caches
};

struct HeapStats {
    uint64_t chunks = 0;     // 1 MiB chunks held
    uint64_t huge_bytes = 0; // blocks of their own, for allocations larger than a chunk
    uint64_t huge_count = 0;
    uint64_t free_pages = 0;      // chunk pages that nothing uses
    uint64_t slab_pages = 0;      // chunk pages cut into small objects
    uint64_t large_pages = 0;     // chunk pages handed out whole
    uint64_t small_bytes = 0;     // sum over classes of in_use * size
    uint64_t allocs = 0;          // successful alloc() calls
    uint64_t frees = 0;           // successful free() calls
    uint64_t failures = 0;        // alloc() calls that found no memory (injected faults included)
    uint64_t chunks_returned = 0; // chunks given back to the frame allocator
    HeapClassStats classes[kHeapClassCount];

    uint64_t bytes_from_frames() const { return chunks * kHeapChunkBytes + huge_bytes; }
};

class Heap {
public:
    static constexpr size_t kMaxSmall = 2048;
    static constexpr size_t kMinAlign = 16;
    static constexpr size_t kMaxAlign = 4096;

    constexpr Heap() = default;
    Heap(const Heap&) = delete;
    Heap& operator=(const Heap&) = delete;

    // Takes its memory from `frames` from now on. Allocates nothing until the first alloc().
    // The direct map must be final (the heap keeps its offset). Once; again after destroy().
    [[nodiscard]] Result<void> init(const FrameSource& frames);

    // At least `bytes` bytes aligned to `align` (a power of two up to kMaxAlign; 16 whatever
    // is asked). OutOfMemory when the frame allocator has nothing left (or a fault is
    // injected); InvalidArgument for a bad alignment. Zero bytes is one byte. Any context.
    [[nodiscard]] Result<void*> alloc(size_t bytes, size_t align = kMinAlign);

    // Frees what alloc() returned; null is ignored. DoubleFree for a page or block freed
    // already (and, in debug builds, for an object); ForeignAddress for an address the heap
    // did not hand out (or the inside of an object). Any context.
    [[nodiscard]] Result<void> free(void* p);

    // How many bytes the allocation at `p` can hold (its class size, or its pages).
    size_t usable_size(const void* p) const;

    // A snapshot: exact when no other CPU uses the heap meanwhile.
    HeapStats stats();

    // Bytes the heap holds from the frame allocator (chunks and large blocks), without the
    // lock: a hint while other CPUs use the heap. No HAL call (the schedule trace samples it).
    uint64_t bytes_from_frames_hint() const;

    // Gives the per-CPU caches' objects back to their slabs, and empty slabs and chunks back
    // to the frame allocator where the rules allow.
    void drain_caches();

    // Walks every chunk and slab and checks them against each other and the counters. For
    // tests; quiescent heap only.
    bool audit();
    // The same without taking the lock or calling the HAL, for the simulator's invariant
    // checks between steps: only while quiescent() (no CPU holds the lock; no CPU can stop
    // inside a per-CPU list's update, which runs with interrupts off and has no
    // synchronisation point, hal::sync_point(), in it).
    bool audit_unlocked() const;
    bool quiescent() const { return !m_lock.is_locked(); }

    // Gives every chunk and block back to the frame allocator, allocated or not. For tests.
    void destroy();

    bool ready() const { return m_ready; }

private:
    struct PageDesc;
    struct ChunkHeader;
    struct FreeObject;
    // One class's free objects on one CPU, with its counters on the same cache line.
    struct alignas(32) Bin {
        FreeObject* head = nullptr;
        uint32_t count = 0;
        uint64_t allocs = 0;
        uint64_t frees = 0;
    };
    struct alignas(64) CpuCache {
        Bin bins[kHeapClassCount];
    };

    // Pops the first object of a non-empty per-CPU list, then restores `flags`.
    static void* take_first(Bin& bin, unsigned cls, hal::IrqFlags flags);

    // With m_lock held.
    Result<void*> alloc_small_locked(unsigned cls);
    void free_small_locked(FreeObject* obj);
    Result<void> refill_locked(Bin& bin, unsigned cls);
    void drain_locked(Bin& bin, uint32_t count);
    Result<void*> alloc_pages_locked(uint64_t pages);
    Result<void> free_pages_locked(ChunkHeader* h, uint64_t page);
    Result<uint64_t> take_run_locked(uint64_t pages, ChunkHeader** chunk);
    void release_run_locked(ChunkHeader* h, uint64_t page);
    Result<ChunkHeader*> grow_locked();
    void maybe_release_chunk_locked(ChunkHeader* h);
    Result<bool> new_slab_locked(unsigned cls);
    void unlink_partial(unsigned cls, ChunkHeader* h, uint64_t page);
    void link_partial(unsigned cls, ChunkHeader* h, uint64_t page);

    // No lock needed. alloc() and free() have the fast paths; these the rest.
    Result<void*> alloc_small(unsigned cls, hal::IrqFlags flags);
    Result<void> free_slow(void* p);
    Result<void> free_object(void* p, unsigned cls, uint64_t in_slab);
    Result<void*> alloc_other(size_t bytes, size_t align);
    void drain_half(Bin& bin, unsigned cls);
    void free_uncached(FreeObject* obj);
    Result<void*> alloc_huge(size_t bytes);
    // The calling CPU's cache (null until its first allocation makes one): the only way the
    // heap finds it. Interrupts off.
    CpuCache*& my_cache();
    CpuCache* create_cache();
    ChunkHeader* header_of(uint64_t pa) const;
    uint64_t pa_of(const void* p) const { return reinterpret_cast<uintptr_t>(p) - m_direct_map; }
    void* va_of(uint64_t pa) const { return reinterpret_cast<void*>(m_direct_map + pa); }
    PageDesc& desc(ChunkHeader* h, uint64_t page) const;

    SpinLock m_lock{"heap", LockRank::Heap};
    bool m_ready = false;
    FrameSource m_frames;
    uintptr_t m_direct_map = 0;
    uint64_t m_chunks = 0; // pfn of the first chunk, or 0 (chunk list: ChunkInfo links)
    uint64_t m_chunk_count = 0;
    uint64_t m_free_pages = 0;
    uint64_t m_partial[kHeapClassCount] = {}; // page number of the first partial slab, or 0
    uint64_t m_slabs[kHeapClassCount] = {};
    int64_t m_taken[kHeapClassCount] = {}; // objects out of slabs (to callers or caches)
    uint64_t m_huge_bytes = 0;
    uint64_t m_huge_count = 0;
    uint64_t m_huge_list = 0; // pfn of the first huge block, or 0
    uint64_t m_large_pages = 0;
    uint64_t m_slab_pages = 0;
    uint64_t m_locked_allocs = 0; // allocations and frees that went past the caches
    uint64_t m_locked_frees = 0;
    uint64_t m_failures = 0;
    uint64_t m_chunks_returned = 0;
    CpuCache* m_cpus[kMaxCpus] = {};
};

// The kernel's heap (ready once init_heap() has run).
Heap& heap();

// Starts the kernel's heap over `frames`. Boot, once the kernel address space is loaded.
[[nodiscard]] Result<void> init_heap(const FrameSource& frames);

// The kernel's allocation functions (operator new and delete use them in the kernel build).
// kmalloc returns null when there is no memory; kfree panics on a bad free.
void* kmalloc(size_t bytes, size_t align = Heap::kMinAlign);
void kfree(void* p);

// Logs "heap: ..." lines with the kernel heap's statistics.
void log_heap_stats();

} // namespace core::mm
