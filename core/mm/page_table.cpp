#include <core/lib/atomic.hpp>
#include <core/lib/compiler.hpp>
#include <core/mm/page_table.hpp>

#include <hal/mmu.hpp>

namespace core::mm {

namespace {

constexpr uint64_t kPhysLimit = uint64_t{1} << 52;

template <typename T>
constexpr T&& move(T& v) {
    return static_cast<T&&>(v);
}

// The direct map is one fixed offset; asked once per operation, so that it is never stale.
ALWAYS_INLINE uintptr_t direct_map() {
    return reinterpret_cast<uintptr_t>(hal::phys_to_virt(hal::PhysAddr(0)));
}

ALWAYS_INLINE uint64_t* table_at(uintptr_t dm, uint64_t pa) {
    return reinterpret_cast<uint64_t*>(dm + pa);
}

// NOTE: entries are read and written whole, with relaxed atomics: another CPU's page walker
// may read them at any time (and set their accessed and dirty bits).
ALWAYS_INLINE uint64_t load(const uint64_t* t, size_t i) {
    return atomic::load<atomic::relaxed>(&t[i]);
}

ALWAYS_INLINE void store(uint64_t* t, size_t i, uint64_t v) {
    atomic::store<atomic::relaxed>(&t[i], v);
}

// An entry as the mapper sees it: without the count bits.
ALWAYS_INLINE uint64_t entry(const uint64_t* t, size_t i) {
    return load(t, i) & ~pte::kCountBits;
}

ALWAYS_INLINE void set_entry(uint64_t* t, size_t i, uint64_t v) {
    store(t, i, (load(t, i) & pte::kCountBits) | (v & ~pte::kCountBits));
}

ALWAYS_INLINE unsigned count(const uint64_t* t) {
    return static_cast<unsigned>(((load(t, 0) >> pte::kCountShift) & 0x7F) |
                                 (((load(t, 1) >> pte::kCountShift) & 0x7) << 7));
}

ALWAYS_INLINE void set_count(uint64_t* t, unsigned n) {
    store(t, 0, (load(t, 0) & ~pte::kCountBits) | (uint64_t{n & 0x7Fu} << pte::kCountShift));
    store(t, 1, (load(t, 1) & ~pte::kCountBits) | (uint64_t{n >> 7} << pte::kCountShift));
}

ALWAYS_INLINE bool present(uint64_t e) {
    return (e & pte::kPresent) != 0;
}

// A present entry at `level` that maps a page rather than pointing at a table.
ALWAYS_INLINE bool is_leaf(uint64_t e, unsigned level) {
    return level == 1 || (level <= 3 && (e & pte::kLarge) != 0);
}

constexpr PageSize size_at(unsigned level) {
    return static_cast<PageSize>(level - 1);
}

constexpr uint64_t kLeafAddress[] = {
    pte::kAddress,
    pte::kAddress & ~(page_bytes(PageSize::Size2MiB) - 1),
    pte::kAddress & ~(page_bytes(PageSize::Size1GiB) - 1),
};

// Where a walk for `va` ends: at a leaf, or at a missing entry.
struct Probe {
    uint64_t* table; // the table holding the last entry looked at
    uint64_t entry;
    unsigned level;
    bool leaf;
};

ALWAYS_INLINE Probe probe(uintptr_t dm, hal::PhysAddr pml4, hal::VirtAddr va) {
    uint64_t* t = table_at(dm, pml4.value());
    for (unsigned level = 4;; --level) {
        uint64_t e = entry(t, table_index(va, level));
        if (!present(e)) {
            return {t, e, level, false};
        }
        if (is_leaf(e, level)) {
            return {t, e, level, true};
        }
        t = table_at(dm, e & pte::kAddress);
    }
}

} // namespace

// --- Entries. ---

uint64_t make_leaf(hal::PhysAddr pa, PageSize size, const PageFlags& flags) {
    uint64_t e = pa.value() | pte::kPresent;
    if (flags.writable) {
        e |= pte::kWritable;
    }
    if (flags.user) {
        e |= pte::kUser;
    }
    if (flags.global) {
        e |= pte::kGlobal;
    }
    if (flags.owned) {
        e |= pte::kOwned;
    }
    if (!flags.executable) {
        e |= pte::kNoExecute;
    }
    auto index = static_cast<unsigned>(flags.cache);
    if (index & 1) {
        e |= pte::kWriteThrough;
    }
    if (index & 2) {
        e |= pte::kCacheDisable;
    }
    if (size == PageSize::Size4KiB) {
        if (index & 4) {
            e |= pte::kPat4KiB;
        }
    } else {
        e |= pte::kLarge;
        if (index & 4) {
            e |= pte::kPatLarge;
        }
    }
    return e;
}

PageFlags leaf_flags(uint64_t e, PageSize size) {
    PageFlags f;
    f.writable = (e & pte::kWritable) != 0;
    f.user = (e & pte::kUser) != 0;
    f.global = (e & pte::kGlobal) != 0;
    f.owned = (e & pte::kOwned) != 0;
    f.executable = (e & pte::kNoExecute) == 0;
    unsigned index = ((e & pte::kWriteThrough) ? 1u : 0u) | ((e & pte::kCacheDisable) ? 2u : 0u);
    uint64_t pat_bit = size == PageSize::Size4KiB ? pte::kPat4KiB : pte::kPatLarge;
    if (e & pat_bit) {
        index |= 4;
    }
    f.cache = static_cast<CacheMode>(index);
    return f;
}

hal::PhysAddr leaf_address(uint64_t e, PageSize size) {
    return hal::PhysAddr(e & kLeafAddress[static_cast<unsigned>(size)]);
}

// --- Flush tokens. ---

FlushToken::FlushToken(FlushToken&& o)
    : m_va(o.m_va), m_armed(o.m_armed), m_table_count(o.m_table_count), m_frames(o.m_frames) {
    for (size_t i = 0; i < m_table_count; ++i) {
        m_tables[i] = o.m_tables[i];
    }
    o.disarm();
}

FlushToken& FlushToken::operator=(FlushToken&& o) {
    if (this != &o) {
        // NOTE: overwriting an armed token would lose its flush.
        DEBUG_ASSERT(!m_armed);
        m_va = o.m_va;
        m_armed = o.m_armed;
        m_table_count = o.m_table_count;
        m_frames = o.m_frames;
        for (size_t i = 0; i < m_table_count; ++i) {
            m_tables[i] = o.m_tables[i];
        }
        o.disarm();
    }
    return *this;
}

#ifdef DUET_DEBUG
FlushToken::~FlushToken() {
    if (m_armed) [[unlikely]] {
        panic("a page-table change was neither flushed nor ignored (FlushToken dropped)");
    }
}
#endif

void FlushToken::flush() {
    if (m_armed) {
        hal::flush_tlb_page(m_va);
        release_tables();
        m_armed = false;
    }
}

void FlushToken::ignore() {
    release_tables();
    m_armed = false;
}

void FlushToken::defer_table(const FrameSource& frames, hal::PhysAddr table) {
    ASSERT(m_table_count < kMaxTables);
    m_frames = frames;
    m_tables[m_table_count++] = table;
}

void FlushToken::release_tables() {
    for (size_t i = 0; i < m_table_count; ++i) {
        MUST(m_frames.free(m_tables[i]));
    }
    m_table_count = 0;
}

#ifdef DUET_DEBUG
FlushBatch::~FlushBatch() {
    if (!empty()) [[unlikely]] {
        panic("a batch of page-table changes was neither flushed nor ignored");
    }
}
#endif

void FlushBatch::add(FlushToken&& token) {
    if (!token.m_armed) {
        return;
    }
    if (m_table_count + token.m_table_count > kMaxTables) {
        // Flushing early is always correct, and frees the tables collected so far.
        flush();
    }
    if (m_pages < kMaxPages) {
        m_va[m_pages++] = token.m_va;
    } else {
        m_flush_all = true;
    }
    for (size_t i = 0; i < token.m_table_count; ++i) {
        m_frames = token.m_frames;
        m_tables[m_table_count++] = token.m_tables[i];
    }
    token.disarm();
}

void FlushBatch::flush() {
    invalidate();
    release_tables();
}

void FlushBatch::invalidate() {
    if (m_flush_all) {
        hal::flush_tlb_all();
    } else {
        for (size_t i = 0; i < m_pages; ++i) {
            hal::flush_tlb_page(m_va[i]);
        }
    }
    m_pages = 0;
    m_flush_all = false;
}

void FlushBatch::ignore() {
    release_tables();
}

void FlushBatch::release_tables() {
    for (size_t i = 0; i < m_table_count; ++i) {
        MUST(m_frames.free(m_tables[i]));
    }
    m_table_count = 0;
    m_pages = 0;
    m_flush_all = false;
}

// --- The mapper. ---

Result<Mapper> Mapper::create(const FrameSource& frames) {
    Mapper m(hal::PhysAddr(0), frames);
    m.m_pml4 = TRY(m.new_table());
    return m;
}

Result<hal::PhysAddr> Mapper::new_table() {
    hal::PhysAddr pa = TRY(m_frames.alloc(FrameOwner::PageTables));
    __builtin_memset(hal::phys_to_virt(pa), 0, kFrameSize);
    return pa;
}

Result<void> Mapper::pin_kernel_slots(hal::VirtAddr first, hal::VirtAddr last) {
    if (!is_canonical(first) || !is_canonical(last) || !in_kernel_half(first) ||
        !in_kernel_half(last) || last < first) {
        return Error::InvalidArgument;
    }
    uint64_t* pml4 = table_at(direct_map(), m_pml4.value());
    for (size_t i = table_index(first, 4); i <= table_index(last, 4); ++i) {
        if (!present(entry(pml4, i))) {
            hal::PhysAddr pdpt = TRY(new_table());
            set_entry(pml4, i, pdpt.value() | pte::kPresent | pte::kWritable);
        }
    }
    return {};
}

Result<FlushToken> Mapper::map(hal::VirtAddr va, hal::PhysAddr pa, PageSize size,
                               const PageFlags& flags, bool allow_kernel_slot) {
    uint64_t bytes = page_bytes(size);
    if (!is_canonical(va) || !va.is_aligned(bytes) || !pa.is_aligned(bytes) ||
        pa.value() >= kPhysLimit || static_cast<unsigned>(flags.cache) >= kCacheModeCount) {
        return Error::InvalidArgument;
    }
    unsigned leaf_level = 1 + static_cast<unsigned>(size);
    bool user_half = !in_kernel_half(va);
    uint64_t link = pte::kPresent | pte::kWritable | (user_half ? pte::kUser : 0);
    uintptr_t dm = direct_map();
    uint64_t* t = table_at(dm, m_pml4.value());
    for (unsigned level = 4; level > leaf_level; --level) {
        size_t i = table_index(va, level);
        uint64_t e = entry(t, i);
        if (!present(e)) {
            if (level == 4 && !user_half && !allow_kernel_slot) {
                return Error::InvalidArgument;
            }
            Result<hal::PhysAddr> table = new_table();
            if (!table.ok()) {
                prune(va, nullptr);
                return table.error();
            }
            e = table.value().value() | link;
            set_entry(t, i, e);
            if (level != 4) {
                set_count(t, count(t) + 1);
            }
        } else if (is_leaf(e, level)) {
            return Error::Busy;
        }
        t = table_at(dm, e & pte::kAddress);
    }
    size_t i = table_index(va, leaf_level);
    // NOTE: a present entry here is a page, or a table with something in it (empty tables are
    // freed), so it always means that part of the range is in use.
    if (present(entry(t, i))) {
        return Error::Busy;
    }
    set_entry(t, i, make_leaf(pa, size, flags));
    set_count(t, count(t) + 1);
    return FlushToken(va);
}

Result<Unmapped> Mapper::unmap(hal::VirtAddr va) {
    if (!is_canonical(va)) {
        return Error::InvalidArgument;
    }
    Probe p = probe(direct_map(), m_pml4, va);
    if (!p.leaf) {
        return Error::NotFound;
    }
    PageSize size = size_at(p.level);
    if (!va.is_aligned(page_bytes(size))) {
        return Error::InvalidArgument;
    }
    Unmapped u;
    u.frame = leaf_address(p.entry, size);
    u.size = size;
    u.flags = leaf_flags(p.entry, size);
    set_entry(p.table, table_index(va, p.level), 0);
    unsigned left = count(p.table) - 1;
    set_count(p.table, left);
    u.flush = FlushToken(va);
    if (left == 0) {
        prune(va, &u.flush);
    }
    return move(u);
}

Result<FlushToken> Mapper::protect(hal::VirtAddr va, const PageFlags& flags) {
    if (!is_canonical(va) || static_cast<unsigned>(flags.cache) >= kCacheModeCount) {
        return Error::InvalidArgument;
    }
    Probe p = probe(direct_map(), m_pml4, va);
    if (!p.leaf) {
        return Error::NotFound;
    }
    PageSize size = size_at(p.level);
    if (!va.is_aligned(page_bytes(size))) {
        return Error::InvalidArgument;
    }
    PageFlags f = flags;
    f.owned = (p.entry & pte::kOwned) != 0;
    uint64_t kept = p.entry & (pte::kAccessed | pte::kDirty);
    set_entry(p.table, table_index(va, p.level),
              make_leaf(leaf_address(p.entry, size), size, f) | kept);
    return FlushToken(va);
}

Result<Translation> Mapper::translate(hal::VirtAddr va) const {
    if (!is_canonical(va)) {
        return Error::InvalidArgument;
    }
    Probe p = probe(direct_map(), m_pml4, va);
    if (!p.leaf) {
        return Error::NotFound;
    }
    Translation t;
    t.size = size_at(p.level);
    uint64_t bytes = page_bytes(t.size);
    t.frame = leaf_address(p.entry, t.size);
    t.page = va.align_down(bytes);
    t.address = t.frame.offset(va.value() & (bytes - 1));
    t.flags = leaf_flags(p.entry, t.size);
    return t;
}

bool Mapper::maps_to(hal::VirtAddr va, hal::PhysAddr frame) const {
    if (!is_canonical(va)) {
        return false;
    }
    Probe p = probe(direct_map(), m_pml4, va);
    return p.leaf && size_at(p.level) == PageSize::Size4KiB &&
           leaf_address(p.entry, PageSize::Size4KiB) == frame;
}

void Mapper::prune(hal::VirtAddr va, FlushToken* token) {
    uintptr_t dm = direct_map();
    uint64_t* tables[5] = {};
    hal::PhysAddr phys[5] = {};
    tables[4] = table_at(dm, m_pml4.value());
    phys[4] = m_pml4;
    unsigned lowest = 4;
    while (lowest > 1) {
        uint64_t e = entry(tables[lowest], table_index(va, lowest));
        if (!present(e) || is_leaf(e, lowest)) {
            break;
        }
        --lowest;
        phys[lowest] = hal::PhysAddr(e & pte::kAddress);
        tables[lowest] = table_at(dm, phys[lowest].value());
    }
    for (unsigned level = lowest; level < 4; ++level) {
        if (count(tables[level]) != 0) {
            return;
        }
        // NOTE: kernel-half PDPTs are shared by every address space, which copied the PML4
        // entry that points at them: they stay, empty or not.
        if (level == 3 && in_kernel_half(va)) {
            return;
        }
        uint64_t* parent = tables[level + 1];
        set_entry(parent, table_index(va, level + 1), 0);
        if (level + 1 != 4) {
            set_count(parent, count(parent) - 1);
        }
        if (token != nullptr) {
            token->defer_table(m_frames, phys[level]);
        } else {
            MUST(m_frames.free(phys[level]));
        }
    }
}

Result<void> Mapper::map_range(hal::VirtAddr va, hal::PhysAddr pa, uint64_t bytes,
                               const PageFlags& flags, FlushBatch* batch, PageSize max,
                               bool allow_kernel_slot) {
    if (!va.is_aligned(kFrameSize) || !pa.is_aligned(kFrameSize) ||
        (bytes & (kFrameSize - 1)) != 0 || va.value() + bytes < va.value()) {
        return Error::InvalidArgument;
    }
    uint64_t done = 0;
    while (done < bytes) {
        hal::VirtAddr v = va.offset(done);
        hal::PhysAddr p = pa.offset(done);
        PageSize size = max;
        while (size != PageSize::Size4KiB &&
               (!v.is_aligned(page_bytes(size)) || !p.is_aligned(page_bytes(size)) ||
                bytes - done < page_bytes(size))) {
            size = static_cast<PageSize>(static_cast<unsigned>(size) - 1);
        }
        Result<FlushToken> r = map(v, p, size, flags, allow_kernel_slot);
        if (!r.ok()) {
            if (done != 0) {
                MUST(unmap_range(va, done, batch));
            }
            return r.error();
        }
        if (batch != nullptr) {
            batch->add(r.release_value());
        } else {
            r.value().ignore();
        }
        done += page_bytes(size);
    }
    return {};
}

Result<void> Mapper::unmap_range(hal::VirtAddr va, uint64_t bytes, FlushBatch* batch) {
    uint64_t end = va.value() + bytes;
    if (!va.is_aligned(kFrameSize) || (bytes & (kFrameSize - 1)) != 0 || end < va.value() ||
        !is_canonical(va) || (bytes != 0 && !is_canonical(hal::VirtAddr(end - 1)))) {
        return Error::InvalidArgument;
    }
    if (bytes == 0) {
        return {};
    }
    uintptr_t dm = direct_map();
    // A large page across either end would be cut in two: refuse before changing anything.
    const uint64_t edges[] = {va.value(), end - 1};
    for (uint64_t edge : edges) {
        Probe p = probe(dm, m_pml4, hal::VirtAddr(edge));
        if (p.leaf) {
            uint64_t size = page_bytes(size_at(p.level));
            uint64_t start = edge & ~(size - 1);
            if (start < va.value() || start + size > end) {
                return Error::InvalidArgument;
            }
        }
    }
    uint64_t cursor = va.value();
    while (cursor < end) {
        Probe p = probe(dm, m_pml4, hal::VirtAddr(cursor));
        // The span the last entry looked at covers: a page, or a hole of that size.
        uint64_t span = uint64_t{1} << (12 + 9 * (p.level - 1));
        if (p.leaf) {
            Result<Unmapped> u = unmap(hal::VirtAddr(cursor));
            ASSERT(u.ok());
            if (batch != nullptr) {
                batch->add(move(u.value().flush));
            } else {
                u.value().flush.ignore();
            }
        }
        uint64_t next = (cursor & ~(span - 1)) + span;
        if (next <= cursor) {
            break; // the end of the address space
        }
        cursor = next;
    }
    return {};
}

namespace {

uint64_t count_below(uintptr_t dm, const uint64_t* t, unsigned level, size_t first, size_t last) {
    uint64_t n = 0;
    for (size_t i = first; i < last; ++i) {
        uint64_t e = entry(t, i);
        if (present(e) && !is_leaf(e, level)) {
            n += 1;
            if (level > 2) {
                n += count_below(dm, table_at(dm, e & pte::kAddress), level - 1, 0,
                                 kEntriesPerTable);
            }
        }
    }
    return n;
}

} // namespace

uint64_t Mapper::count_tables(bool user_half_only) const {
    uintptr_t dm = direct_map();
    return 1 + count_below(dm, table_at(dm, m_pml4.value()), 4, 0,
                           user_half_only ? kKernelHalfSlot : kEntriesPerTable);
}

unsigned Mapper::entry_count(hal::PhysAddr table) {
    return count(table_at(direct_map(), table.value()));
}

} // namespace core::mm
