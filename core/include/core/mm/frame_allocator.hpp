#pragma once

// The frame allocator: a binary buddy allocator over the usable frame areas, with per-CPU
// caches of single frames in front of it. docs/memory.md describes it in full.
//
// - Blocks of 2^order frames, order 0 (4 KiB) to kMaxOrder (1 GiB), naturally aligned.
// - Free blocks are linked through their own first frame, reached through the direct map, so
//   the allocator needs no heap. Its metadata (taken from the bump allocator's frames) is a
//   bit per frame for "head of a held block", a byte per frame for the owner and order of a
//   held block, and per-order bitmaps of free blocks with summary levels: about 11 bits per
//   frame, 0.034% of the memory it manages.
// - Three zones, split at 1 MiB and 4 GiB: no block crosses a zone boundary, and unconstrained
//   requests take the highest zone first, so low memory lasts for those who need it.
// - Single frames and 2 MiB blocks come from a per-CPU cache: one HAL call and one atomic
//   exchange, no global lock. Caches refill and drain in batches from the buddy allocator
//   under its lock, and give everything back when an allocation would otherwise fail.
// - alloc() takes an order, an alignment and a physical range; it is served from the free
//   lists when the range covers whole zones, otherwise by searching the free bitmaps,
//   lowest address first. No operation costs O(frames) or O(free blocks).
// - free() detects double frees (also of a frame inside a free block or in a per-CPU cache),
//   foreign addresses (never handed out, reserved, the allocator's own metadata, inside an
//   allocated block) and a wrong order. A double free racing with itself on two CPUs is not
//   detected.
// - Accounting: free + used + reserved = total at all times, with `used` split by owner. Debug
//   builds check it on every operation.

#include <core/lib/limits.hpp>
#include <core/lib/result.hpp>
#include <core/mm/bump_allocator.hpp>
#include <core/mm/frame.hpp>
#include <core/mm/level_bitmap.hpp>
#include <core/sync/spinlock.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core::mm {

inline constexpr unsigned kMaxOrder = 18; // 2^18 frames: 1 GiB
inline constexpr unsigned kOrderCount = kMaxOrder + 1;
inline constexpr unsigned kOrder2MiB = 9;

inline constexpr hal::PhysAddr kBelow1MiB{uint64_t{1} << 20};
inline constexpr hal::PhysAddr kBelow4GiB{uint64_t{1} << 32};

// What alloc() should find: 2^order frames, aligned to `align` bytes (0: the block's own
// size; at most 1 GiB), lying wholly inside [min, max).
struct FrameRequest {
    unsigned order = 0;
    uint64_t align = 0;
    hal::PhysAddr min{0};
    hal::PhysAddr max{~uint64_t{0}};
    FrameOwner owner = FrameOwner::Kernel;
    // False for the few allocations the kernel cannot do without (a CPU's idle thread):
    // the simulator's fault injection leaves those alone, so that a fault sweep exercises the
    // paths that handle failure instead of stopping every run at boot.
    bool injectable = true;
};

struct FrameStats {
    uint64_t total = 0;    // RAM frames the firmware offers as usable
    uint64_t free = 0;     // in the buddy allocator and the per-CPU caches
    uint64_t used = 0;     // allocated, by anyone
    uint64_t reserved = 0; // kept by the kernel at boot (page 0, initrd, ...)
    uint64_t cached = 0;   // the part of `free` sitting in per-CPU caches
    uint64_t used_by[kFrameOwnerCount] = {};
    uint64_t metadata_bytes = 0; // taken from the frames for the allocator's own bookkeeping
    // The most frames out of the buddy allocator at once (used, or waiting in per-CPU caches):
    // an upper bound of the peak of `used`, within the caches' few frames per CPU.
    uint64_t peak_taken = 0;
};

class FrameAllocator {
public:
    // Single frames one per-CPU cache holds at most, and how many move at once between it
    // and the buddy allocator.
    static constexpr uint32_t kCacheCapacity = 64;
    static constexpr uint32_t kCacheBatch = 32;
    // 2 MiB blocks one per-CPU cache holds at most; they move one at a time.
    static constexpr uint32_t kHugeCacheCapacity = 2;

    // One CPU's cache of free single frames and 2 MiB blocks: the two sizes the kernel asks for
    // most (a page; a large page). A 2 MiB block taken from and given back to the buddy lists
    // costs a split and a merge at every order up to 1 GiB, each touching another page.
    struct alignas(64) CpuCache {
        bool locked = false;
        uint32_t count = 0;      // single frames in frames[]
        uint32_t huge_count = 0; // 2 MiB blocks in huge[]
        int64_t held = 0;        // frames taken from the buddy allocator, minus those given back
        int64_t used[kFrameOwnerCount] = {}; // frames allocated through this cache, minus freed
        uint64_t huge[kHugeCacheCapacity] = {};
        uint64_t frames[kCacheCapacity] = {};
    };

    // The caches are kept outside the allocator: kMaxCpus of them, `stride` bytes apart from
    // `caches` on. The kernel's allocator has its caches in the CPUs' core::Cpu entries
    // (stride sizeof(Cpu)); a test's, in an array of its own.
    constexpr explicit FrameAllocator(CpuCache* caches, uint32_t stride = sizeof(CpuCache))
        : m_caches(caches), m_cache_stride(stride) {}
    FrameAllocator(const FrameAllocator&) = delete;
    FrameAllocator& operator=(const FrameAllocator&) = delete;

    // Bytes of metadata init() takes from the bump allocator for these areas.
    static uint64_t metadata_bytes(const FrameArea* areas, size_t count);

    // Takes over from `bump`: allocates its metadata from it, retires it, accounts every frame
    // it gave out as used by that run's owner and everything else in `areas` as free.
    // `reserved_frames` are RAM frames the kernel kept out of `areas` (they count in the
    // total). `areas` must be what `bump` was started with. Any CPU, once, before any other
    // call; may be called again to start over (tests, a new simulated machine).
    [[nodiscard]] Result<void> init(const FrameArea* areas, size_t count, BumpAllocator& bump,
                                    uint64_t reserved_frames);

    // One frame, from the calling CPU's cache. OutOfMemory when no frame is free anywhere (or
    // when the simulator injects a hal::FaultPoint::FrameAlloc fault, as it may for every
    // allocation). Any context, any interrupt state.
    [[nodiscard]] Result<hal::PhysAddr> alloc_frame(FrameOwner owner);

    // A block as `request` describes it. InvalidArgument for an order above kMaxOrder, an
    // alignment that is not a power of two or above 1 GiB, or an empty range; OutOfMemory if
    // no free block fits. An alignment larger than the block is served from free blocks at
    // least as large as the alignment. Any context, any interrupt state.
    [[nodiscard]] Result<hal::PhysAddr> alloc(const FrameRequest& request);

    // Frees the block of 2^order frames at `base`, as allocated. DoubleFree if it is free
    // already (or inside a free block); ForeignAddress if this allocator never handed it out
    // (reserved, outside its memory, or inside an allocated block); InvalidArgument if the
    // block was allocated with another order. Any context, any interrupt state.
    [[nodiscard]] Result<void> free(hal::PhysAddr base, unsigned order = 0);

    // The direct map moved (the kernel loaded its own address space): re-reads
    // hal::phys_to_virt() and moves every pointer the allocator keeps into it. The allocator
    // reads the direct map's offset once, at init(), because it is one fixed offset
    // (ARCHITECTURE.md, Memory) and a HAL call on every link costs more than the link. Call on
    // the bootstrap CPU before any other CPU allocates; the old mapping must still be valid
    // up to this call.
    void rebase_direct_map();

    // A snapshot of the counters. Takes the lock; exact when no other CPU allocates meanwhile.
    FrameStats stats();

    // Free frames (buddy lists and per-CPU caches) without the lock: exact on a quiet machine,
    // a hint otherwise. O(CPUs), no HAL call: the schedule trace samples it on the switch path.
    uint64_t free_frames_hint() const;

    // free + used + reserved = total, and each part agrees with the per-CPU caches. O(CPUs),
    // no lock and no HAL call, so the simulator can call it when a run has ended.
    bool accounting_holds() const;

    // Walks every structure and checks it against the counters: the free lists, the bitmaps,
    // the caches, every held block. Returns what is wrong, or null. O(frames); for tests, on a
    // quiescent allocator.
    const char* audit() const;

    bool ready() const { return m_ready; }
    // No CPU is inside the allocator's locked parts (its lock and every cache's are free):
    // the counters agree with each other. Reads only.
    bool quiescent() const;
    hal::PhysAddr metadata_base() const { return m_meta_base; }

private:
    struct FreeNode;
    using Cache = CpuCache;

    static constexpr unsigned kZoneCount = 3;

    // The calling CPU's cache: the only way the allocator finds it. No lock needed.
    Cache& my_cache();
    // CPU `cpu`'s cache.
    Cache& cache(uint32_t cpu) const {
        return *reinterpret_cast<Cache*>(reinterpret_cast<char*>(m_caches) + cpu * m_cache_stride);
    }

    // Everything below runs with m_lock held unless it says otherwise.
    unsigned zone_of(uint64_t pfn) const;
    uint64_t zone_start(unsigned zone) const;
    uint64_t zone_end(unsigned zone) const;
    FreeNode* node(uint64_t pfn) const;
    void push_free(uint64_t pfn, unsigned order);
    void remove_free(uint64_t pfn, unsigned order);
    void free_range(uint64_t pfn, uint64_t end);
    void release_block(uint64_t pfn, unsigned order);
    bool take_from_lists(unsigned zone, unsigned order, uint64_t* pfn);
    bool take_in_range(unsigned order, unsigned align_order, uint64_t lo, uint64_t hi,
                       uint64_t* pfn);
    bool take_block(const FrameRequest& request, unsigned align_order, uint64_t lo, uint64_t hi,
                    uint64_t* pfn);
    void mark_held(uint64_t pfn, uint8_t info);
    void refill(Cache& cache);
    void note_taken();
    void refill_huge(Cache& cache);
    void drain(Cache& cache, uint32_t frames);
    void drain_huge(Cache& cache, uint32_t blocks);
    Result<void> free_locked(uint64_t pfn, unsigned order);
    Error classify_bad_free(uint64_t pfn) const;
    bool buddy_consistent() const;
    // No lock needed.
    Result<hal::PhysAddr> alloc_cached_frame(FrameOwner owner);
    Result<hal::PhysAddr> alloc_huge(FrameOwner owner);
    Result<hal::PhysAddr> alloc_locked_path(const FrameRequest& request, unsigned align_order,
                                            uint64_t lo, uint64_t hi);
    void drain_all_caches();

    // Frame state, indexed by pfn - m_base_pfn; only the buddy lock holder writes m_heads.
    bool is_head(uint64_t pfn) const;
    void set_head(uint64_t pfn, bool head);
    uint8_t info(uint64_t pfn) const;
    void set_info(uint64_t pfn, uint8_t value);

    SpinLock m_lock{"frames", LockRank::Frames};
    bool m_ready = false;
    uintptr_t m_direct_map = 0; // hal::phys_to_virt(0): the direct map is one fixed offset
    uint64_t m_base_pfn = 0;    // aligned to 2^kMaxOrder
    uint64_t m_end_pfn = 0;
    uint64_t* m_heads = nullptr;     // 1 bit per frame: first frame of a held block or cached frame
    uint8_t* m_info = nullptr;       // 1 byte per frame, valid where m_heads says so
    LevelBitmap m_free[kOrderCount]; // bit i of order k: the block at m_base_pfn + i*2^k is free
    uint64_t m_lists[kZoneCount][kOrderCount] = {}; // first free block of each list, or kNoFrame
    uint32_t m_nonempty[kZoneCount] = {};           // bit k: list k of the zone is not empty
    hal::PhysAddr m_meta_base{};
    uint64_t m_meta_bytes = 0;

    // Accounting, under m_lock: m_buddy_free + m_in_caches + sum(m_used) + m_reserved ==
    // m_total. m_used can go negative for an owner whose frames came from caches.
    uint64_t m_total = 0;
    uint64_t m_reserved = 0;
    uint64_t m_buddy_free = 0;
    uint64_t m_peak_taken = 0;
    int64_t m_in_caches = 0; // frames the caches took, net: negative when they give back more
    int64_t m_used[kFrameOwnerCount] = {};

    CpuCache* m_caches;
    uint32_t m_cache_stride;
    uint32_t m_cpus = 0; // caches in use: hal::cpu_count() at init()
};

} // namespace core::mm
