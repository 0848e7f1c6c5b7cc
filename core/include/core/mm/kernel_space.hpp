#pragma once

// The kernel address space, built once at boot from a plain description and then switched to
// on every CPU: the direct map of all RAM, the kernel image by section with W^X, the BOOTBOOT
// pages, the framebuffer, the loader's core stacks, and the stack region where kernel stacks
// are mapped on demand, each above an unmapped guard page. layout.hpp has the addresses;
// docs/virtual-memory.md the reasoning.

#include <core/lib/result.hpp>
#include <core/mm/address_space.hpp>
#include <core/mm/frame_source.hpp>
#include <core/mm/layout.hpp>
#include <core/mm/level_bitmap.hpp>
#include <core/mm/map_normalizer.hpp>
#include <core/sync/spinlock.hpp>

#include <hal/types.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core::mm {

// Physical memory the direct map covers: [base, end), page-aligned.
struct RamRange {
    hal::PhysAddr base;
    hal::PhysAddr end;
};

// The ranges the direct map must cover for a normalised memory map: every piece of RAM
// (usable, kept by the kernel, ACPI) widened to whole pages, plus `extra` ranges (the initrd,
// which the BOOTBOOT map leaves out), sorted and merged. CapacityExceeded if `out` is too
// small (count + extra_count always suffices).
[[nodiscard]] Result<size_t> direct_map_ranges(const MemoryRegion* regions, size_t count,
                                               const RamRange* extra, size_t extra_count,
                                               RamRange* out, size_t capacity);

// The loader's allocations (the kernel image, the BOOTBOOT pages, its core stacks, the
// initrd), which the BOOTBOOT map leaves out as holes, turned into the RAM the direct map must
// cover, in place: widened to whole pages, empty ones dropped, sorted, and joined wherever no
// region of the normalised map lies between two of them. A loader takes its allocations from
// free memory, so what lies between two of them in one hole (its page tables, say) is RAM it
// took too. Returns how many ranges are left in `ranges`. Under the BIOS loader that is
// [0x8000, end of the core stacks) and [initrd, end of the kernel copy).
size_t join_loader_ranges(const MemoryRegion* regions, size_t count, RamRange* ranges, size_t n);

// The kernel image's sections, as the linker script bounds them (virtual addresses, each
// page-aligned and in this order), and where the image lies in RAM.
struct KernelImage {
    hal::VirtAddr text_start; // read + execute
    hal::VirtAddr text_end;
    hal::VirtAddr rodata_start; // read-only, no-execute
    hal::VirtAddr rodata_end;
    hal::VirtAddr data_start; // read-write, no-execute: data and bss
    hal::VirtAddr data_end;
    hal::PhysAddr phys_base; // the physical address of the byte at text_start
};

struct KernelSpaceDesc {
    const RamRange* ram = nullptr; // what the direct map covers (direct_map_ranges())
    size_t ram_count = 0;
    KernelImage image;
    hal::PhysAddr bootboot;    // the bootboot page, mapped read-only at kBootbootPage
    hal::PhysAddr environment; // the environment page, read-only at kEnvironmentPage
    hal::PhysAddr framebuffer; // write-combining at kFramebufferBase; none if bytes is 0
    uint64_t framebuffer_bytes = 0;
    // The loader's core stacks (page k at boot_stack_page(k)), read-write, for as long as a
    // CPU may still run on one; none if 0.
    hal::PhysAddr boot_stacks;
    uint64_t boot_stack_pages = 0;
    uint64_t stack_pages = 4; // pages per kernel stack: a power of two, 16 KiB by default
};

// A kernel stack: [bottom, top) is mapped, the page below `bottom` is not, and neither is the
// page at `top`. Its frames are one physically contiguous block (so that the simulator can
// run a context on it through the direct map).
struct KernelStack {
    hal::VirtAddr top; // the initial stack pointer
    hal::VirtAddr bottom;
    hal::PhysAddr frames;
    uint32_t slot = 0;
    // Bit c: CPU c (below 64) caches no stale translation of the slot, having mapped or
    // flushed the stack since the slot was mapped to these frames (flush_stack()).
    uint64_t flushed_on = 0;
};

struct KernelSpaceStats {
    uint64_t direct_map_bytes = 0;
    uint64_t pages[3] = {};            // leaves in the kernel half by PageSize
    uint64_t direct_map_pages[3] = {}; // those of the direct map
    uint64_t table_frames = 0;
    uint64_t wx_violations = 0; // leaves both writable and executable: always 0
    uint64_t stack_slots = 0;
    uint64_t stacks_in_use = 0; // handed out by alloc_stack() and not freed
    uint64_t stacks_kept = 0;   // freed, kept mapped for the next alloc_stack()
};

class KernelSpace {
public:
    static constexpr uint64_t kMaxStackSlots = 32768;

    constexpr KernelSpace() = default;
    KernelSpace(const KernelSpace&) = delete;
    KernelSpace& operator=(const KernelSpace&) = delete;

    // Builds the tables from `desc`, taking frames from `frames`. Does not load them.
    // InvalidArgument for a description that does not fit the layout (unaligned or unordered
    // sections, RAM beyond 64 TiB, a framebuffer larger than its window, a stack size that is
    // not a power of two); OutOfMemory. On an error everything taken is given back (if the
    // source can take frames back).
    [[nodiscard]] Result<void> build(const KernelSpaceDesc& desc, const FrameSource& frames);

    bool ready() const { return m_ready; }
    AddressSpace& space() { return m_space; }
    const AddressSpace& space() const { return m_space; }

    // Loads the kernel address space on the calling CPU. Interrupts off.
    void activate() const { m_space.activate(); }

    // Freed stacks kept mapped for the next alloc_stack(), per CPU of the machine (Linux keeps
    // two per CPU too): a thread's life then maps, flushes and unmaps nothing, and takes no
    // frames. Their frames stay allocated (owner KernelStacks).
    static constexpr uint32_t kKeptStacksPerCpu = 2;

    // A kernel stack of the configured size: the last one freed, if one is kept, still mapped
    // to the same frames (and flushed on the calling CPU unless that CPU has since the slot was
    // mapped); otherwise a slot mapped afresh from fresh frames (owner KernelStacks) and
    // flushed on the calling CPU (see flush_stack()). OutOfMemory when no slot or frames are left.
    // Any CPU. `injectable` false: no injected failure (the stacks the kernel needs to boot at
    // all).
    [[nodiscard]] Result<KernelStack> alloc_stack(bool injectable = true);
    // Keeps it mapped for the next alloc_stack() while fewer than kKeptStacksPerCpu per CPU
    // are kept; otherwise unmaps it, flushes it on the calling CPU, and frees its frames and
    // slot. InvalidArgument if it is not a stack alloc_stack() handed out; DoubleFree if it
    // was freed already. The calling CPU must cache no stale translation of it: it ran on the
    // stack (the thread's last CPU), or flushed it (flush_stack()) since it was mapped.
    [[nodiscard]] Result<void> free_stack(const KernelStack& stack);
    // Unmaps and frees every kept stack (their frames and slots). Any CPU.
    void release_kept_stacks();
    // The frames of the kept stacks, without the lock: a hint while CPUs run.
    uint64_t kept_stack_frames() const { return m_stacks_kept * m_stack_pages; }
    // Drops the calling CPU's TLB entries for `stack`'s pages, unless `stack.flushed_on` says it
    // did since the slot was mapped to these frames, and notes that it did. free_stack()
    // flushes only the CPU that frees a stack (there are no TLB shootdowns yet), so another CPU
    // may still cache the slot's previous stack: a CPU calls this before it first runs on a
    // stack, or writes to one, that it did not allocate (the scheduler: when a thread first
    // runs on a CPU).
    void flush_stack(KernelStack& stack) const;
    // Whether `va` lies in the guard page below a stack slot, and which slot.
    bool is_stack_guard(hal::VirtAddr va, uint32_t* slot = nullptr) const;
    uint64_t stack_bytes() const { return m_stack_pages << kFrameShift; }

    // Maps device registers [pa, pa + bytes) uncached in the MMIO window; returns the virtual
    // address of `pa`. OutOfMemory when the window is full.
    [[nodiscard]] Result<hal::VirtAddr> map_device(hal::PhysAddr pa, uint64_t bytes);

    hal::VirtAddr framebuffer() const { return m_framebuffer; }

    // Walks the kernel half. O(tables).
    KernelSpaceStats stats() const;

    // Gives back everything build() took and every stack still allocated. For tests.
    void destroy();

private:
    Result<void> build_locked(const KernelSpaceDesc& desc);
    Result<void> map_direct(const RamRange* ram, size_t count);
    Result<void> map_image(const KernelImage& image);
    Result<void> map_section(const KernelImage& image, hal::VirtAddr start, hal::VirtAddr end,
                             const PageFlags& flags);
    Result<void> map_boot_pages(const KernelSpaceDesc& desc);
    void init_stack_slots(uint64_t stack_pages);
    KernelStack stack_in(uint32_t slot, hal::PhysAddr frames) const;
    bool is_kept(const KernelStack& stack) const;
    KernelStack take_kept();
    void release_locked(uint32_t slot, hal::PhysAddr frames);

    SpinLock m_lock{"kernel-space", LockRank::KernelSpace};
    bool m_ready = false;
    AddressSpace m_space;
    FrameSource m_frames;
    uint64_t m_direct_map_bytes = 0;
    hal::VirtAddr m_framebuffer{};
    hal::VirtAddr m_mmio_next{};
    uint64_t m_stack_pages = 0;
    uint64_t m_slot_bytes = 0;
    uint64_t m_slots = 0;
    uint64_t m_stacks_in_use = 0;
    // The kept stacks: a list, last freed first, linked through the stacks themselves.
    uint64_t m_stacks_kept = 0;
    uint32_t m_kept_slot = 0; // the first's, when m_stacks_kept > 0
    hal::PhysAddr m_kept_frames{};
    LevelBitmap m_free_slots; // bit i: slot i is free
    uint64_t m_slot_words[LevelBitmap::words_needed(kMaxStackSlots)] = {};
};

// The kernel's address space (ready once the boot path has built it).
KernelSpace& kernel_space();

// Boot, step 4, on the bootstrap CPU between start_physical_memory() and hand_over_frames(),
// on a stack of a few KiB (not the loader's: build() alone takes about 2 KiB): builds the
// kernel address space from the bump allocator (which the frame allocator takes over later)
// and logs it. It maps
//   - every piece of RAM in the direct map: the normalised map's RAM and the loader's own
//     (join_loader_ranges() of the kernel image, the BOOTBOOT pages, the core stacks and the
//     initrd);
//   - the kernel image by section with W^X, the bootboot and environment pages read-only, and
//     the loader's core stacks, as hal::boot_image() describes them;
//   - the framebuffer the bootboot header names, if any;
//   - the backend's device windows (hal::device_windows()), uncached, telling the backend
//     where (hal::device_window_mapped());
// with kernel stacks of `stack_bytes` (a power-of-two number of pages) to come. Stops the
// machine with a reason if any of it fails. Loads nothing.
void start_kernel_space(const bootboot_abi::Info& info, uint64_t stack_bytes);

// Loads the kernel address space on the calling CPU: programs the PAT (kPatValue), then CR3.
// Every CPU, once, interrupts off, before it touches the direct map (hal::phys_to_virt()).
// The backend has already enabled no-execute pages and CR0.WP on every CPU at entry.
void enter_kernel_space();

// Logs the kernel's address space in two lines, the same on both machines for the same map:
// "vm: direct map S at 0x... in N 1G, N 2M, N 4K pages; N tables" and
// "vm: W^X holds; kernel stacks S each, N slots".
void log_kernel_space();

} // namespace core::mm
