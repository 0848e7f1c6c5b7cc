#pragma once

// x86_64 4-level page tables, in the hardware's format, written into physical frames: the
// entry bits, flush tokens, and the mapper. docs/virtual-memory.md describes them.
//
// - The mapper works on the tables of one PML4 (a physical address) through the direct map.
//   It maps 4 KiB, 2 MiB and 1 GiB pages, unmaps them, changes their protection and
//   translates addresses. It never splits or merges a large page.
// - Intermediate tables come from the frame allocator (owner PageTables) and go back to it
//   when their last entry goes. Each table counts its present entries in bits 52-58 of its
//   first two entries, which the hardware ignores, so an unmap never scans a table.
// - A PDPT in the kernel half (PML4 slots 256-511) is never freed: every address space
//   shares it by copying the kernel's PML4 entry (address_space.hpp).
// - map(), unmap() and protect() return a FlushToken that the caller must flush(), add to a
//   FlushBatch, or ignore(); debug builds panic if one is dropped. Tables an unmap empties
//   travel with the token and are freed only once it is flushed or ignored, so that no TLB or
//   paging-structure cache can still point at a reused frame.
// - No locking: the owner of the tables (an address space) serialises its mapper calls.

#include <core/lib/result.hpp>
#include <core/mm/frame.hpp>
#include <core/mm/frame_source.hpp>

#include <hal/types.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core::mm {

// --- Entry bits (Intel SDM vol. 3, 4.5). ---

namespace pte {
inline constexpr uint64_t kPresent = uint64_t{1} << 0;
inline constexpr uint64_t kWritable = uint64_t{1} << 1;
inline constexpr uint64_t kUser = uint64_t{1} << 2;
inline constexpr uint64_t kWriteThrough = uint64_t{1} << 3; // PWT: PAT index bit 0
inline constexpr uint64_t kCacheDisable = uint64_t{1} << 4; // PCD: PAT index bit 1
inline constexpr uint64_t kAccessed = uint64_t{1} << 5;
inline constexpr uint64_t kDirty = uint64_t{1} << 6;
inline constexpr uint64_t kLarge = uint64_t{1} << 7;     // PS in a PDPTE or PDE: a leaf
inline constexpr uint64_t kPat4KiB = uint64_t{1} << 7;   // PAT index bit 2 in a PTE
inline constexpr uint64_t kGlobal = uint64_t{1} << 8;    // leaves only
inline constexpr uint64_t kOwned = uint64_t{1} << 9;     // software: the mapping owns the frame
inline constexpr uint64_t kPatLarge = uint64_t{1} << 12; // PAT index bit 2 in a large leaf
inline constexpr uint64_t kNoExecute = uint64_t{1} << 63;
// Bits 52-58 are ignored by the hardware at every level; the mapper keeps each table's count
// of present entries there (7 bits in entry 0, 3 in entry 1).
inline constexpr uint64_t kCountShift = 52;
inline constexpr uint64_t kCountBits = uint64_t{0x7F} << kCountShift;
inline constexpr uint64_t kAddress = 0x000F'FFFF'FFFF'F000;
} // namespace pte

inline constexpr size_t kEntriesPerTable = 512;
// The first PML4 slot of the kernel half (0xFFFF'8000'0000'0000).
inline constexpr size_t kKernelHalfSlot = 256;

enum class PageSize : uint8_t { Size4KiB = 0, Size2MiB = 1, Size1GiB = 2 };

constexpr uint64_t page_bytes(PageSize size) {
    return uint64_t{1} << (12 + 9 * static_cast<unsigned>(size));
}

// Memory types a mapping can ask for. Each is one entry of the PAT the kernel programs
// (kPatValue below).
enum class CacheMode : uint8_t {
    WriteBack = 0, // RAM: the default
    WriteThrough = 1,
    UncachedMinus = 2,  // UC-: uncached, but an MTRR may make it write-combining
    Uncacheable = 3,    // UC: device registers
    WriteCombining = 4, // framebuffers
    WriteProtect = 5,
};
inline constexpr size_t kCacheModeCount = 6;

// x86 memory type encodings in the PAT MSR.
namespace pat {
inline constexpr uint8_t kUc = 0x00;
inline constexpr uint8_t kWc = 0x01;
inline constexpr uint8_t kWt = 0x04;
inline constexpr uint8_t kWp = 0x05;
inline constexpr uint8_t kWb = 0x06;
inline constexpr uint8_t kUcMinus = 0x07;
} // namespace pat

// The PAT the kernel programs on every CPU (IA32_PAT, one byte per entry, entry 0 lowest).
// Entries 0-3 keep their power-on meaning (WB, WT, UC-, UC), so an entry written before the
// PAT is programmed means the same thing after; 4 is write-combining, 5 write-protect.
inline constexpr uint64_t kPatValue = uint64_t{pat::kWb} | uint64_t{pat::kWt} << 8 |
                                      uint64_t{pat::kUcMinus} << 16 | uint64_t{pat::kUc} << 24 |
                                      uint64_t{pat::kWc} << 32 | uint64_t{pat::kWp} << 40 |
                                      uint64_t{pat::kUcMinus} << 48 | uint64_t{pat::kUc} << 56;

// What a leaf mapping allows. Not writable, not executable, kernel-only by default.
struct PageFlags {
    bool writable = false;
    bool executable = false;
    bool user = false;
    bool global = false; // kept in the TLB across address-space switches (kernel mappings)
    CacheMode cache = CacheMode::WriteBack;
    // Software: the mapping owns its frame, and AddressSpace::destroy() frees it.
    bool owned = false;

    constexpr bool operator==(const PageFlags&) const = default;
};

// The leaf entry that maps `pa` as a page of `size` with `flags`.
uint64_t make_leaf(hal::PhysAddr pa, PageSize size, const PageFlags& flags);
// What a leaf entry of a page of `size` says.
PageFlags leaf_flags(uint64_t entry, PageSize size);
hal::PhysAddr leaf_address(uint64_t entry, PageSize size);

constexpr bool is_canonical(hal::VirtAddr va) {
    uint64_t top = va.value() >> 47;
    return top == 0 || top == 0x1FFFF;
}

constexpr bool in_kernel_half(hal::VirtAddr va) {
    return (va.value() >> 63) != 0;
}

// Index of `va` in its table at `level` (4: PML4, 3: PDPT, 2: PD, 1: PT).
constexpr size_t table_index(hal::VirtAddr va, unsigned level) {
    return (va.value() >> (12 + 9 * (level - 1))) & (kEntriesPerTable - 1);
}

// --- Flushing. ---

// The TLB invalidation a change to the tables needs, and the table frames it emptied, which
// may be reused only after it. Move-only; must be flushed, batched or ignored.
class [[nodiscard]] FlushToken {
public:
    static constexpr size_t kMaxTables = 3; // one unmap frees at most a PT, a PD and a PDPT

    constexpr FlushToken() = default;
    explicit FlushToken(hal::VirtAddr va) : m_va(va), m_armed(true) {}
    FlushToken(FlushToken&& other);
    FlushToken& operator=(FlushToken&& other);
    FlushToken(const FlushToken&) = delete;
    FlushToken& operator=(const FlushToken&) = delete;
#ifdef DUET_DEBUG
    // A token dropped without a decision is a missing TLB flush waiting to happen.
    ~FlushToken();
#endif

    // Invalidates the page on the calling CPU (INVLPG also drops the paging-structure caches'
    // entries), then frees the tables the change emptied.
    void flush();
    // Skips the invalidation: the tables are not loaded on any CPU (being built, or about to
    // be destroyed), or the change cannot be in a TLB (a new mapping where nothing was).
    void ignore();

    hal::VirtAddr address() const {
        return m_va;
    }
    bool pending() const {
        return m_armed;
    }

private:
    friend class Mapper;
    friend class FlushBatch;
    void defer_table(const FrameSource& frames, hal::PhysAddr table);
    void release_tables();
    void disarm() {
        m_armed = false;
        m_table_count = 0;
    }

    hal::VirtAddr m_va{};
    bool m_armed = false;
    uint8_t m_table_count = 0;
    FrameSource m_frames;
    hal::PhysAddr m_tables[kMaxTables]{};
};

// Many tokens, one flush: single-page invalidations while there are few, the whole TLB past
// kMaxPages. Table frames it collects are freed after the flush. Must be flushed or ignored
// before it goes away (checked in debug builds).
class FlushBatch {
public:
    static constexpr size_t kMaxPages = 32;
    static constexpr size_t kMaxTables = 48;

    constexpr FlushBatch() = default;
    FlushBatch(const FlushBatch&) = delete;
    FlushBatch& operator=(const FlushBatch&) = delete;
#ifdef DUET_DEBUG
    ~FlushBatch();
#endif

    void add(FlushToken&& token);
    void flush();
    void ignore();
    // Invalidates the pages on the calling CPU but keeps the tables, which a later flush() or
    // ignore() frees: for a change other CPUs must flush first (tlb_shootdown()).
    void invalidate();

    size_t pages() const {
        return m_pages;
    }
    bool empty() const {
        return m_pages == 0 && !m_flush_all && m_table_count == 0;
    }

private:
    void release_tables();

    hal::VirtAddr m_va[kMaxPages]{};
    size_t m_pages = 0;
    bool m_flush_all = false;
    FrameSource m_frames;
    size_t m_table_count = 0;
    hal::PhysAddr m_tables[kMaxTables]{};
};

// --- The mapper. ---

struct Translation {
    hal::PhysAddr address; // where the translated address itself lands
    hal::PhysAddr frame;   // the first byte of the page
    hal::VirtAddr page;    // the page's first virtual address
    PageSize size = PageSize::Size4KiB;
    PageFlags flags;
};

// What unmap() took away: the frame (the caller frees it if it owns it, after the flush).
struct Unmapped {
    hal::PhysAddr frame;
    PageSize size = PageSize::Size4KiB;
    PageFlags flags;
    FlushToken flush;
};

class Mapper {
public:
    constexpr Mapper() = default;
    // The tables under `pml4`, whose intermediate tables come from and go to `frames`.
    Mapper(hal::PhysAddr pml4, const FrameSource& frames) : m_pml4(pml4), m_frames(frames) {}

    // A new, empty PML4 (a zeroed frame owned by PageTables).
    [[nodiscard]] static Result<Mapper> create(const FrameSource& frames);

    hal::PhysAddr pml4() const { return m_pml4; }
    const FrameSource& frames() const { return m_frames; }
    void set_frames(const FrameSource& frames) { m_frames = frames; }

    // Gives every empty PML4 slot from `first`'s to `last`'s (both in the kernel half) a PDPT,
    // so that address spaces that copy the kernel half see every later kernel mapping there.
    // For the kernel's own tables, as they are built. InvalidArgument for a user address or
    // `last` below `first`.
    [[nodiscard]] Result<void> pin_kernel_slots(hal::VirtAddr first, hal::VirtAddr last);

    // Maps the page of `size` at `va` to the frame(s) at `pa`. InvalidArgument if either is
    // not aligned to the page size, `va` is not canonical or `pa` is beyond 52 bits; Busy if
    // any part of the page is mapped already; OutOfMemory if a table cannot be allocated (no
    // table stays behind). A new table in the kernel half of the PML4 is InvalidArgument
    // unless `allow_kernel_slot` (only the kernel's own tables may grow there).
    [[nodiscard]] Result<FlushToken> map(hal::VirtAddr va, hal::PhysAddr pa, PageSize size,
                                         const PageFlags& flags, bool allow_kernel_slot = false);

    // Unmaps the page that starts at `va`, whatever its size. NotFound if nothing maps `va`;
    // InvalidArgument if `va` is inside a larger page but not at its start.
    [[nodiscard]] Result<Unmapped> unmap(hal::VirtAddr va);

    // Gives the page that starts at `va` new flags (`flags.owned` is ignored: ownership
    // stays). NotFound and InvalidArgument as unmap().
    [[nodiscard]] Result<FlushToken> protect(hal::VirtAddr va, const PageFlags& flags);

    // Where `va` leads. NotFound if it is not mapped.
    [[nodiscard]] Result<Translation> translate(hal::VirtAddr va) const;

    // Whether a 4 KiB page maps `va` to `frame`: one question of translate()'s, without its
    // flags (a kernel stack's check on every free).
    [[nodiscard]] bool maps_to(hal::VirtAddr va, hal::PhysAddr frame) const;

    // Maps [va, va + bytes) to [pa, pa + bytes) with the largest pages, up to `max`, that
    // alignment allows. On an error, unmaps what it mapped and returns the error. The tokens
    // go into `batch`; a null batch ignores them (the tables are not loaded on any CPU).
    [[nodiscard]] Result<void> map_range(hal::VirtAddr va, hal::PhysAddr pa, uint64_t bytes,
                                         const PageFlags& flags, FlushBatch* batch,
                                         PageSize max = PageSize::Size1GiB,
                                         bool allow_kernel_slot = false);

    // Unmaps every page wholly inside [va, va + bytes); holes are skipped. InvalidArgument
    // (before changing anything) if a large page straddles either end. Tokens as map_range().
    [[nodiscard]] Result<void> unmap_range(hal::VirtAddr va, uint64_t bytes, FlushBatch* batch);

    // Table frames under this PML4, the PML4 included; with `user_half_only`, only those the
    // user half reaches (plus the PML4). O(tables); for tests and reports.
    uint64_t count_tables(bool user_half_only = false) const;

    // Entries a table at `pa` says are present (its count in the ignored bits). For tests.
    static unsigned entry_count(hal::PhysAddr table);

private:
    Result<hal::PhysAddr> new_table();
    // Frees the empty tables on the path to `va`, lowest first, clearing their parents'
    // entries; the frames go to `token` (or straight back when it is null).
    void prune(hal::VirtAddr va, FlushToken* token);

    hal::PhysAddr m_pml4{};
    FrameSource m_frames;
};

} // namespace core::mm
