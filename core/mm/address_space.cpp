#include <core/lib/atomic.hpp>
#include <core/mm/address_space.hpp>
#include <core/mm/shootdown.hpp>

#include <hal/mmu.hpp>

namespace core::mm {

namespace {

constexpr unsigned order_of(PageSize size) {
    return 9 * static_cast<unsigned>(size);
}

uint64_t* table_at(hal::PhysAddr pa) {
    return static_cast<uint64_t*>(hal::phys_to_virt(pa));
}

uint64_t entry(const uint64_t* t, size_t i) {
    return atomic::load<atomic::relaxed>(&t[i]) & ~pte::kCountBits;
}

// Frees the table at `pa` (at `level`) and everything under it that it owns.
void free_tree(const FrameSource& frames, hal::PhysAddr pa, unsigned level) {
    const uint64_t* t = table_at(pa);
    for (size_t i = 0; i < kEntriesPerTable; ++i) {
        uint64_t e = entry(t, i);
        if ((e & pte::kPresent) == 0) {
            continue;
        }
        bool leaf = level == 1 || (e & pte::kLarge) != 0;
        if (!leaf) {
            free_tree(frames, hal::PhysAddr(e & pte::kAddress), level - 1);
        } else if ((e & pte::kOwned) != 0) {
            auto size = static_cast<PageSize>(level - 1);
            MUST(frames.free(leaf_address(e, size), order_of(size)));
        }
    }
    MUST(frames.free(pa));
}

} // namespace

Result<AddressSpace> AddressSpace::create_kernel(const FrameSource& frames) {
    AddressSpace as;
    as.m_mapper = TRY(Mapper::create(frames));
    as.m_kernel = true;
    return as;
}

Result<AddressSpace> AddressSpace::create(const FrameSource& frames, const AddressSpace& kernel) {
    if (!kernel.valid() || !kernel.m_kernel) {
        return Error::InvalidArgument;
    }
    AddressSpace as;
    as.m_mapper = TRY(Mapper::create(frames));
    uint64_t* mine = table_at(as.pml4());
    const uint64_t* theirs = table_at(kernel.pml4());
    for (size_t i = kKernelHalfSlot; i < kEntriesPerTable; ++i) {
        atomic::store<atomic::relaxed>(&mine[i], entry(theirs, i));
    }
    return as;
}

void AddressSpace::activate() const {
    hal::load_page_table(pml4());
}

bool AddressSpace::allowed(hal::VirtAddr va) const {
    return m_kernel || (va >= kUserBase && va < kUserEnd);
}

Result<FlushToken> AddressSpace::map(hal::VirtAddr va, hal::PhysAddr pa, PageSize size,
                                     const PageFlags& flags) {
    if (!allowed(va) || (!m_kernel && va.value() + page_bytes(size) > kUserEnd.value())) {
        return Error::InvalidArgument;
    }
    return m_mapper.map(va, pa, size, flags);
}

Result<Unmapped> AddressSpace::unmap(hal::VirtAddr va) {
    if (!allowed(va)) {
        return Error::InvalidArgument;
    }
    return m_mapper.unmap(va);
}

Result<FlushToken> AddressSpace::protect(hal::VirtAddr va, const PageFlags& flags) {
    if (!allowed(va)) {
        return Error::InvalidArgument;
    }
    return m_mapper.protect(va, flags);
}

Result<FlushToken> AddressSpace::map_new(hal::VirtAddr va, const PageFlags& flags,
                                         FrameOwner owner) {
    if (!allowed(va)) {
        return Error::InvalidArgument;
    }
    hal::PhysAddr frame = TRY(m_mapper.frames().alloc(owner));
    __builtin_memset(hal::phys_to_virt(frame), 0, kFrameSize);
    PageFlags f = flags;
    f.owned = true;
    Result<FlushToken> r = m_mapper.map(va, frame, PageSize::Size4KiB, f);
    if (!r.ok()) {
        MUST(m_mapper.frames().free(frame));
    }
    return r;
}

Result<void> AddressSpace::unmap_and_free(hal::VirtAddr va) {
    Unmapped u = TRY(unmap(va));
    // NOTE: the frame may be reused only once no TLB can reach it any more.
    u.flush.flush();
    if (u.flags.owned) {
        TRY(m_mapper.frames().free(u.frame, order_of(u.size)));
    }
    return {};
}

Result<void> AddressSpace::unmap_and_free_shared(hal::VirtAddr va, size_t pages) {
    bool all = true;
    for (size_t done = 0; done < pages; done += SharedUnmap::kMaxPages) {
        size_t n = pages - done < SharedUnmap::kMaxPages ? pages - done : SharedUnmap::kMaxPages;
        SharedUnmap batch;
        all &= batch.take(*this, va.offset(done * kFrameSize), n) == n;
        batch.release(*this);
    }
    if (!all) {
        return Error::NotFound;
    }
    return {};
}

size_t SharedUnmap::take(AddressSpace& space, hal::VirtAddr va, size_t pages) {
    size_t unmapped = 0;
    for (size_t i = 0; i < pages && m_count < kMaxPages; ++i) {
        Result<Unmapped> u = space.unmap(va.offset(i * kFrameSize));
        if (!u.ok()) {
            continue; // not mapped
        }
        m_taken[m_count++] = {u.value().frame, u.value().size, u.value().flags.owned};
        m_batch.add(static_cast<FlushToken&&>(u.value().flush));
        ++unmapped;
    }
    return unmapped;
}

void SharedUnmap::release(AddressSpace& space) {
    tlb_shootdown(space.pml4(), m_batch);
    m_batch.flush(); // the tables the unmaps emptied: no CPU reaches them any more
    for (size_t i = 0; i < m_count; ++i) {
        if (m_taken[i].owned) {
            MUST(space.mapper().frames().free(m_taken[i].frame, order_of(m_taken[i].size)));
        }
    }
    m_count = 0;
}

void AddressSpace::destroy() {
    if (!valid()) {
        return;
    }
    FrameSource frames = m_mapper.frames();
    const uint64_t* top = table_at(pml4());
    for (size_t i = 0; i < kKernelHalfSlot; ++i) {
        uint64_t e = entry(top, i);
        if ((e & pte::kPresent) != 0) {
            free_tree(frames, hal::PhysAddr(e & pte::kAddress), 3);
        }
    }
    if (m_kernel) {
        // Only when the kernel's own address space goes (tests, a failed build): its pinned
        // PDPTs and everything under them.
        for (size_t i = kKernelHalfSlot; i < kEntriesPerTable; ++i) {
            uint64_t e = entry(top, i);
            if ((e & pte::kPresent) != 0) {
                free_tree(frames, hal::PhysAddr(e & pte::kAddress), 3);
            }
        }
    }
    MUST(frames.free(pml4()));
    *this = AddressSpace();
}

} // namespace core::mm
