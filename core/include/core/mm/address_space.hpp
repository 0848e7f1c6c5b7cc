#pragma once

// Address spaces: a PML4 whose user half (slots 0-255) is its own and whose kernel half
// (slots 256-511) is the kernel's. The kernel's address space pins a PDPT in every kernel slot
// it maps into, at build time (Mapper::pin_kernel_slots, from KernelSpace::build), and a new
// address space copies the kernel half's 256 entries, so a kernel mapping made later shows in
// every address space without touching any of them.
//
// An AddressSpace is a handle (trivially copyable, as Result<T> wants): it owns its tables
// and the frames mapped with PageFlags::owned, and destroy() returns all of them. The caller
// serialises changes to one address space.

#include <core/lib/result.hpp>
#include <core/mm/frame_source.hpp>
#include <core/mm/page_table.hpp>

#include <hal/types.hpp>

namespace core::mm {

// The lowest and highest user addresses: page 0 is never mapped, so that a null pointer faults.
inline constexpr hal::VirtAddr kUserBase{0x1000};
inline constexpr hal::VirtAddr kUserEnd{0x0000'8000'0000'0000}; // exclusive

class AddressSpace {
public:
    constexpr AddressSpace() = default;

    // The kernel's own: an empty PML4, whose kernel slots its builder pins
    // (Mapper::pin_kernel_slots) before it maps anything there. Its kernel half is what
    // create() shares; its user half stays empty.
    [[nodiscard]] static Result<AddressSpace> create_kernel(const FrameSource& frames);
    // A new address space with an empty user half and `kernel`'s kernel half.
    [[nodiscard]] static Result<AddressSpace> create(const FrameSource& frames,
                                                     const AddressSpace& kernel);

    bool valid() const { return m_mapper.pml4() != hal::PhysAddr(0); }
    bool is_kernel() const { return m_kernel; }
    hal::PhysAddr pml4() const { return m_mapper.pml4(); }
    Mapper& mapper() { return m_mapper; }
    const Mapper& mapper() const { return m_mapper; }

    // Loads it on the calling CPU (CR3). Interrupts off, as hal::load_page_table() wants.
    void activate() const;

    // Mapper operations, limited to the user half for a user address space (InvalidArgument
    // otherwise); the kernel's may map anywhere.
    [[nodiscard]] Result<FlushToken> map(hal::VirtAddr va, hal::PhysAddr pa, PageSize size,
                                         const PageFlags& flags);
    [[nodiscard]] Result<Unmapped> unmap(hal::VirtAddr va);
    [[nodiscard]] Result<FlushToken> protect(hal::VirtAddr va, const PageFlags& flags);
    [[nodiscard]] Result<Translation> translate(hal::VirtAddr va) const {
        return m_mapper.translate(va);
    }

    // A fresh zeroed 4 KiB frame of `owner`, mapped at `va` as owned (destroy() frees it).
    [[nodiscard]] Result<FlushToken> map_new(hal::VirtAddr va, const PageFlags& flags,
                                             FrameOwner owner = FrameOwner::User);
    // Unmaps the page at `va`, flushes it on the calling CPU, and frees its frame if the
    // mapping owned it. Only for an address space no other CPU has loaded.
    [[nodiscard]] Result<void> unmap_and_free(hal::VirtAddr va);
    // Unmaps the `pages` 4 KiB pages from `va` and frees the frames the mappings owned, and the
    // tables they empty, once no TLB can reach them (SharedUnmap, below, a batch at a time).
    // Thread context, interrupts on, no spinlock held. A page that is not mapped is skipped,
    // and the result is then NotFound.
    [[nodiscard]] Result<void> unmap_and_free_shared(hal::VirtAddr va, size_t pages);

    // Returns every frame it owns: the tables of its user half, the frames mapped as owned
    // (an owned 2 MiB or 1 GiB page is freed as one block of that size), and the PML4. The
    // kernel half is left alone. It must not be loaded on any CPU. The handle becomes empty.
    void destroy();

private:
    bool allowed(hal::VirtAddr va) const;

    Mapper m_mapper;
    bool m_kernel = false;
};

// Unmapping pages of an address space other CPUs may have loaded, a batch at a time: take()
// changes the tables (under whatever lock serialises the caller's changes), release() makes the
// calling CPU invalidate the pages and every other CPU that has the space loaded flush
// (tlb_shootdown()), and only then frees the frames the mappings owned and the tables they
// emptied. release() wants thread context, interrupts on and no spinlock held: a caller whose
// lock is a spinlock drops it between the two.
class SharedUnmap {
public:
    // NOTE: 32 contiguous pages empty at most two tables of each level, far below what makes
    // FlushBatch::add() flush early (which would free tables before the others flushed).
    static constexpr size_t kMaxPages = FlushBatch::kMaxPages;

    constexpr SharedUnmap() = default;
    SharedUnmap(const SharedUnmap&) = delete;
    SharedUnmap& operator=(const SharedUnmap&) = delete;

    // Unmaps the pages of [va, va + pages * 4 KiB), at most kMaxPages of them in all; a page
    // that is not mapped is skipped. Returns how many were unmapped.
    size_t take(AddressSpace& space, hal::VirtAddr va, size_t pages);
    // The shootdown, then the frees. Leaves it empty.
    void release(AddressSpace& space);

private:
    struct Taken {
        hal::PhysAddr frame;
        PageSize size;
        bool owned;
    };
    FlushBatch m_batch;
    Taken m_taken[kMaxPages]{};
    size_t m_count = 0;
};

} // namespace core::mm
