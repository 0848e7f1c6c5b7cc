#pragma once

// Address spaces: a PML4 whose user half (slots 0-255) is its own and whose kernel half
// (slots 256-511) is the kernel's. The kernel's address space pins a PDPT in every kernel slot
// at build time (Mapper::pin_kernel_half), and a new address space copies those 256 entries,
// so a kernel mapping made later shows in every address space without touching any of them.
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

    // The kernel's own: an empty PML4 with a PDPT pinned in every kernel slot. Its kernel half
    // is what create() shares; its user half stays empty.
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
    // tables they empty, once no TLB can reach them: the calling CPU invalidates them and every
    // other CPU that has this address space loaded flushes (tlb_shootdown()). For a user address
    // space that other CPUs may have loaded; thread context, interrupts on, no spinlock held.
    // A page that is not mapped stops it with that error, the pages before it unmapped and freed.
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

} // namespace core::mm
