#include <core/lib/atomic.hpp>
#include <core/lib/compiler.hpp>
#include <core/lib/log.hpp>
#include <core/mm/kernel_space.hpp>
#include <core/mm/physical_memory.hpp>

#include <hal/irq.hpp>
#include <hal/mmu.hpp>
#include <hal/stop.hpp>

namespace core::mm {

namespace {

constinit KernelSpace s_kernel_space;

constexpr uint64_t kPage = kFrameSize;

bool is_ram(MemoryType type) {
    return type == MemoryType::Usable || type == MemoryType::Kernel ||
           type == MemoryType::AcpiReclaimable || type == MemoryType::AcpiNvs;
}

bool aligned(hal::VirtAddr va) {
    return va.is_aligned(kPage);
}

uint64_t entry(const uint64_t* t, size_t i) {
    return atomic::load<atomic::relaxed>(&t[i]) & ~pte::kCountBits;
}

// `direct`: the direct map's page counts, when `t` is under one of its PML4 slots.
void walk_stats(const uint64_t* t, unsigned level, KernelSpaceStats& s, uint64_t* direct) {
    for (size_t i = 0; i < kEntriesPerTable; ++i) {
        uint64_t e = entry(t, i);
        if ((e & pte::kPresent) == 0) {
            continue;
        }
        if (level == 1 || (e & pte::kLarge) != 0) {
            ++s.pages[level - 1];
            if (direct != nullptr) {
                ++direct[level - 1];
            }
            if ((e & pte::kWritable) != 0 && (e & pte::kNoExecute) == 0) {
                ++s.wx_violations;
            }
            continue;
        }
        ++s.table_frames;
        walk_stats(
            static_cast<const uint64_t*>(hal::phys_to_virt(hal::PhysAddr(e & pte::kAddress))),
            level - 1, s, direct);
    }
}

// Whether any region of the map overlaps [lo, hi).
bool map_has_between(const MemoryRegion* regions, size_t count, uint64_t lo, uint64_t hi) {
    for (size_t i = 0; i < count; ++i) {
        if (regions[i].base < hi && regions[i].end > lo) {
            return true;
        }
    }
    return false;
}

// The normalised map's RAM plus the loader's: at most one range per region, plus the joined
// loader ranges (join_loader_ranges() leaves at most kLoaderRanges).
constexpr size_t kLoaderRanges = 5;
RamRange s_direct_ranges[2 * (bootboot_abi::kMaxMmapEntries + 2) + kLoaderRanges];

constexpr size_t kMaxDeviceWindows = 4;

[[noreturn]] NOINLINE BOOT_CODE void fail(const char* what, Error e) {
    LogLine("vm").str(what).str(": ").str(describe(e));
    hal::halt_machine(hal::ExitCode::Panic);
}

[[noreturn]] NOINLINE BOOT_CODE void refuse(const char* why) {
    LogLine("vm").str(why);
    hal::halt_machine(hal::ExitCode::Panic);
}

} // namespace

KernelSpace& kernel_space() {
    return s_kernel_space;
}

Result<size_t> direct_map_ranges(const MemoryRegion* regions, size_t count, const RamRange* extra,
                                 size_t extra_count, RamRange* out, size_t capacity) {
    size_t n = 0;
    auto push = [&](uint64_t base, uint64_t end) -> bool {
        base &= ~(kPage - 1);
        end = (end + kPage - 1) & ~(kPage - 1);
        if (base >= end) {
            return true;
        }
        if (n == capacity) {
            return false;
        }
        // Insertion in order of base: the inputs are short and mostly sorted already.
        size_t j = n++;
        while (j > 0 && out[j - 1].base.value() > base) {
            out[j] = out[j - 1];
            --j;
        }
        out[j] = {hal::PhysAddr(base), hal::PhysAddr(end)};
        return true;
    };
    for (size_t i = 0; i < count; ++i) {
        if (is_ram(regions[i].type) && !push(regions[i].base, regions[i].end)) {
            return Error::CapacityExceeded;
        }
    }
    for (size_t i = 0; i < extra_count; ++i) {
        if (!push(extra[i].base.value(), extra[i].end.value())) {
            return Error::CapacityExceeded;
        }
    }
    size_t merged = 0;
    for (size_t i = 0; i < n; ++i) {
        if (merged > 0 && out[i].base <= out[merged - 1].end) {
            if (out[i].end > out[merged - 1].end) {
                out[merged - 1].end = out[i].end;
            }
            continue;
        }
        out[merged++] = out[i];
    }
    return merged;
}

size_t join_loader_ranges(const MemoryRegion* regions, size_t count, RamRange* ranges, size_t n) {
    size_t m = 0;
    for (size_t i = 0; i < n; ++i) {
        hal::PhysAddr base = ranges[i].base.align_down(kPage);
        hal::PhysAddr end = ranges[i].end.align_up(kPage);
        if (base >= end) {
            continue;
        }
        // Insertion in order of base, into the part already done (m <= i).
        size_t j = m++;
        while (j > 0 && ranges[j - 1].base > base) {
            ranges[j] = ranges[j - 1];
            --j;
        }
        ranges[j] = {base, end};
    }
    size_t joined = 0;
    for (size_t i = 0; i < m; ++i) {
        if (joined > 0) {
            RamRange& last = ranges[joined - 1];
            if (ranges[i].base <= last.end ||
                !map_has_between(regions, count, last.end.value(), ranges[i].base.value())) {
                if (ranges[i].end > last.end) {
                    last.end = ranges[i].end;
                }
                continue;
            }
        }
        ranges[joined++] = ranges[i];
    }
    return joined;
}

// NOTE: build() runs during bring-up, on the loader's 1 KiB stack (tools/check-stack.py): no
// batch of tokens on the stack here. Nothing built is loaded on any CPU yet, so every token is
// ignored (a null batch).
BOOT_CODE Result<void> KernelSpace::build(const KernelSpaceDesc& desc, const FrameSource& frames) {
    auto guard = m_lock.lock_irqsave();
    if (m_ready || !frames.valid()) {
        return Error::InvalidArgument;
    }
    m_frames = frames;
    Result<void> r = build_locked(desc);
    if (!r.ok()) {
        if (m_space.valid() && m_frames.can_free()) {
            m_space.destroy();
        }
        m_space = AddressSpace();
        m_direct_map_bytes = 0;
        m_framebuffer = hal::VirtAddr();
        m_slots = 0;
        return r;
    }
    m_ready = true;
    return {};
}

BOOT_CODE Result<void> KernelSpace::build_locked(const KernelSpaceDesc& desc) {
    uint64_t sp = desc.stack_pages;
    uint64_t core_stack_pages = bootboot_abi::kMaxCores / (kPage / bootboot_abi::kInitStackSize);
    if (sp == 0 || (sp & (sp - 1)) != 0 || sp > 64 || desc.boot_stack_pages > core_stack_pages) {
        return Error::InvalidArgument;
    }
    m_space = TRY(AddressSpace::create_kernel(m_frames));
    // The top slot holds everything the kernel maps after the build (stacks, device windows)
    // and BOOTBOOT's pages and the image; map_direct() pins the direct map's. No other slot
    // is ever mapped, so no other gets a table: 1 MiB of them was most of a boot's page faults
    // in the simulator (docs/virtual-memory.md).
    TRY(m_space.mapper().pin_kernel_slots(kStacksBase, hal::VirtAddr(~uint64_t{0})));
    TRY(map_direct(desc.ram, desc.ram_count));
    TRY(map_image(desc.image));
    TRY(map_boot_pages(desc));
    init_stack_slots(sp);
    m_mmio_next = kMmioBase;
    return {};
}

// The direct map: read-write, never executable, in the largest pages that fit.
BOOT_CODE Result<void> KernelSpace::map_direct(const RamRange* ram, size_t count) {
    for (size_t i = 0; i < count; ++i) {
        const RamRange& r = ram[i];
        if (!r.base.is_aligned(kPage) || !r.end.is_aligned(kPage) || r.end < r.base ||
            r.end.value() > kDirectMapEnd.value() - kDirectMapBase.value()) {
            return Error::InvalidArgument;
        }
        uint64_t bytes = r.end.value() - r.base.value();
        if (bytes == 0) {
            continue;
        }
        TRY(m_space.mapper().pin_kernel_slots(direct_map(r.base),
                                              direct_map(hal::PhysAddr(r.end.value() - 1))));
        TRY(m_space.mapper().map_range(direct_map(r.base), r.base, bytes, {.writable = true},
                                       nullptr, PageSize::Size1GiB));
        m_direct_map_bytes += bytes;
    }
    return {};
}

BOOT_CODE Result<void> KernelSpace::map_boot_pages(const KernelSpaceDesc& desc) {
    Mapper& mapper = m_space.mapper();
    // The BOOTBOOT pages: the core only reads them.
    if (desc.bootboot != hal::PhysAddr(0)) {
        TRY(mapper.map(kBootbootPage, desc.bootboot, PageSize::Size4KiB, {})).ignore();
    }
    if (desc.environment != hal::PhysAddr(0)) {
        TRY(mapper.map(kEnvironmentPage, desc.environment, PageSize::Size4KiB, {})).ignore();
    }
    if (desc.framebuffer_bytes != 0) {
        uint64_t bytes = (desc.framebuffer_bytes + kPage - 1) & ~(kPage - 1);
        if (!desc.framebuffer.is_aligned(kPage) ||
            bytes > kFramebufferEnd.value() - kFramebufferBase.value()) {
            return Error::InvalidArgument;
        }
        TRY(mapper.map_range(kFramebufferBase, desc.framebuffer, bytes,
                             {.writable = true, .cache = CacheMode::WriteCombining}, nullptr,
                             PageSize::Size2MiB));
        m_framebuffer = kFramebufferBase;
    }
    for (uint64_t k = 0; k < desc.boot_stack_pages; ++k) {
        TRY(mapper.map(boot_stack_page(k), desc.boot_stacks.offset(k * kPage), PageSize::Size4KiB,
                       {.writable = true}))
            .ignore();
    }
    return {};
}

BOOT_CODE Result<void> KernelSpace::map_image(const KernelImage& image) {
    const hal::VirtAddr bounds[] = {image.text_start, image.text_end,   image.rodata_start,
                                    image.rodata_end, image.data_start, image.data_end};
    for (size_t i = 0; i < 6; ++i) {
        if (!aligned(bounds[i]) || (i > 0 && bounds[i] < bounds[i - 1])) {
            return Error::InvalidArgument;
        }
    }
    // Everything between the BOOTBOOT pages and the loader's core stacks.
    hal::VirtAddr limit =
        boot_stack_page(bootboot_abi::kMaxCores / (kPage / bootboot_abi::kInitStackSize) - 1);
    if (image.text_start < kKernelImageBase || image.data_end > limit ||
        !image.phys_base.is_aligned(kPage)) {
        return Error::InvalidArgument;
    }
    // W^X: code is never writable, data never executable.
    TRY(map_section(image, image.text_start, image.text_end, {.executable = true}));
    TRY(map_section(image, image.rodata_start, image.rodata_end, {}));
    TRY(map_section(image, image.data_start, image.data_end, {.writable = true}));
    return {};
}

BOOT_CODE Result<void> KernelSpace::map_section(const KernelImage& image, hal::VirtAddr start,
                                                hal::VirtAddr end, const PageFlags& flags) {
    hal::PhysAddr pa = image.phys_base.offset(start.value() - image.text_start.value());
    return m_space.mapper().map_range(start, pa, end.value() - start.value(), flags, nullptr,
                                      PageSize::Size4KiB);
}

void KernelSpace::init_stack_slots(uint64_t stack_pages) {
    m_stack_pages = stack_pages;
    m_slot_bytes = (stack_pages + 1) * kPage;
    // One unmapped page stays below kStacksEnd, above the highest stack.
    uint64_t slots = (kStacksEnd.value() - kStacksBase.value() - kPage) / m_slot_bytes;
    m_slots = slots < kMaxStackSlots ? slots : kMaxStackSlots;
    m_free_slots.init(m_slot_words, m_slots);
    for (uint64_t i = 0; i < m_slots; ++i) {
        m_free_slots.set(i);
    }
    m_stacks_in_use = 0;
    m_stacks_kept = 0;
}

KernelStack KernelSpace::stack_in(uint32_t slot, hal::PhysAddr frames) const {
    KernelStack stack;
    stack.slot = slot;
    stack.bottom = kStacksBase.offset(slot * m_slot_bytes + kPage);
    stack.top = stack.bottom.offset(m_stack_pages * kPage);
    stack.frames = frames;
    return stack;
}

namespace {

// A kept stack's first bytes (through the direct map): the next kept stack, the CPUs that have
// flushed this one (KernelStack::flushed_on), and a check of the stack and those CPUs. (A
// corrupt link is caught as the next stack's check.)
struct KeptNode {
    uint32_t next_slot;
    uint64_t next_frames;
    uint64_t flushed_on;
    // NOTE: a write into a kept stack (a use after its thread exited) breaks this, and the
    // stack is not handed out again; a stack freed twice is caught by it.
    uint64_t check;
};

uint64_t kept_check(uint32_t slot, hal::PhysAddr frames, uint64_t flushed_on) {
    return frames.value() ^ (uint64_t{slot} * 0x9E37'79B9'7F4A'7C15) ^
           (flushed_on * 0xC2B2'AE3D'27D4'EB4F) ^ 0x6B65'7074'2073'746B;
}

KeptNode* kept_node(hal::PhysAddr frames) {
    return static_cast<KeptNode*>(hal::phys_to_virt(frames));
}

} // namespace

bool KernelSpace::is_kept(const KernelStack& stack) const {
    const KeptNode* node = kept_node(stack.frames);
    return node->check == kept_check(stack.slot, stack.frames, node->flushed_on);
}

// With m_lock held and a stack kept: the last one freed.
KernelStack KernelSpace::take_kept() {
    KernelStack stack = stack_in(m_kept_slot, m_kept_frames);
    KeptNode* node = kept_node(stack.frames);
    if (node->check != kept_check(stack.slot, stack.frames, node->flushed_on)) {
        panic("kernel stacks: a kept stack was written to (use after its thread exited?)");
    }
    node->check = 0;
    stack.flushed_on = node->flushed_on;
    m_kept_slot = node->next_slot;
    m_kept_frames = hal::PhysAddr(node->next_frames);
    --m_stacks_kept;
    return stack;
}

Result<KernelStack> KernelSpace::alloc_stack(bool injectable) {
    if (!m_ready) {
        return Error::InvalidArgument;
    }
    {
        auto guard = m_lock.lock_irqsave();
        if (m_stacks_kept > 0) {
            ++m_stacks_in_use;
            KernelStack stack = take_kept();
            // NOTE: another CPU may still cache the slot's earlier stack (frees flush only the
            // freeing CPU), and the caller writes to it. The CPUs that flushed it since it was
            // mapped cache no other, the one that freed it among them (free_stack()).
            flush_stack(stack);
            return stack;
        }
    }
    auto order = static_cast<unsigned>(__builtin_ctzll(m_stack_pages));
    hal::PhysAddr frames = TRY(
        m_frames.alloc(FrameOwner::KernelStacks, order, hal::PhysAddr(~uint64_t{0}), injectable));
    auto guard = m_lock.lock_irqsave();
    uint64_t slot = m_free_slots.find_next(0);
    if (slot == LevelBitmap::kNone) {
        MUST(m_frames.free(frames, order));
        return Error::OutOfMemory;
    }
    m_free_slots.clear(slot);
    KernelStack stack = stack_in(static_cast<uint32_t>(slot), frames);
    Mapper& mapper = m_space.mapper();
    for (uint64_t i = 0; i < m_stack_pages; ++i) {
        Result<FlushToken> r = mapper.map(stack.bottom.offset(i * kPage), frames.offset(i * kPage),
                                          PageSize::Size4KiB, {.writable = true});
        if (!r.ok()) {
            FlushBatch batch;
            MUST(mapper.unmap_range(stack.bottom, i * kPage, &batch));
            batch.flush();
            m_free_slots.set(slot);
            MUST(m_frames.free(frames, order));
            return r.error();
        }
        // NOTE: flushed below, page by page, for the reason flush_stack() gives.
        r.value().ignore();
    }
    ++m_stacks_in_use;
    flush_stack(stack);
    return stack;
}

namespace {

uint64_t cpu_bit(uint32_t cpu) {
    return cpu < 64 ? uint64_t{1} << cpu : 0;
}

} // namespace

void KernelSpace::flush_stack(KernelStack& stack) const {
    uint64_t me = cpu_bit(hal::cpu_index());
    if ((stack.flushed_on & me) != 0) {
        return; // no stale translation here: the mapping has not changed since the last flush
    }
    for (hal::VirtAddr va = stack.bottom; va < stack.top; va = va.offset(kPage)) {
        hal::flush_tlb_page(va);
    }
    stack.flushed_on |= me;
}

// With m_lock held: unmaps the stack in `slot` and frees its frames and the slot.
void KernelSpace::release_locked(uint32_t slot, hal::PhysAddr frames) {
    // FIXME: flushes the calling CPU only; other CPUs that ran on this stack need a
    // TLB shootdown, which comes with the IPI for it.
    FlushBatch batch;
    MUST(
        m_space.mapper().unmap_range(stack_in(slot, frames).bottom, m_stack_pages * kPage, &batch));
    batch.flush();
    m_free_slots.set(slot);
    MUST(m_frames.free(frames, static_cast<unsigned>(__builtin_ctzll(m_stack_pages))));
}

Result<void> KernelSpace::free_stack(const KernelStack& stack) {
    if (!m_ready || stack.slot >= m_slots) {
        return Error::InvalidArgument;
    }
    KernelStack expected = stack_in(stack.slot, stack.frames);
    if (stack.bottom != expected.bottom || stack.top != expected.top) {
        return Error::InvalidArgument;
    }
    auto guard = m_lock.lock_irqsave();
    if (m_free_slots.test(stack.slot)) {
        return Error::DoubleFree;
    }
    if (!m_space.mapper().maps_to(stack.bottom, stack.frames)) {
        return Error::InvalidArgument;
    }
    if (is_kept(stack)) {
        return Error::DoubleFree;
    }
    --m_stacks_in_use;
    if (m_stacks_kept < uint64_t{kKeptStacksPerCpu} * hal::cpu_count()) {
        // NOTE: the freeing CPU caches no stale translation of it (this function's contract).
        uint64_t flushed_on = stack.flushed_on | cpu_bit(hal::cpu_index());
        *kept_node(stack.frames) = {m_kept_slot, m_kept_frames.value(), flushed_on,
                                    kept_check(stack.slot, stack.frames, flushed_on)};
        m_kept_slot = stack.slot;
        m_kept_frames = stack.frames;
        ++m_stacks_kept;
        return {};
    }
    release_locked(stack.slot, stack.frames);
    return {};
}

void KernelSpace::release_kept_stacks() {
    if (!m_ready) {
        return;
    }
    auto guard = m_lock.lock_irqsave();
    while (m_stacks_kept > 0) {
        KernelStack stack = take_kept();
        release_locked(stack.slot, stack.frames);
    }
}

bool KernelSpace::is_stack_guard(hal::VirtAddr va, uint32_t* slot) const {
    if (m_slots == 0 || va < kStacksBase) {
        return false;
    }
    uint64_t offset = va.value() - kStacksBase.value();
    uint64_t i = offset / m_slot_bytes;
    if (i >= m_slots || offset % m_slot_bytes >= kPage) {
        return false;
    }
    if (slot != nullptr) {
        *slot = static_cast<uint32_t>(i);
    }
    return true;
}

Result<hal::VirtAddr> KernelSpace::map_device(hal::PhysAddr pa, uint64_t bytes) {
    if (!m_ready || bytes == 0) {
        return Error::InvalidArgument;
    }
    hal::PhysAddr base = pa.align_down(kPage);
    hal::PhysAddr end = pa.offset(bytes).align_up(kPage);
    uint64_t size = end.value() - base.value();
    auto guard = m_lock.lock_irqsave();
    if (size > kMmioEnd.value() - m_mmio_next.value()) {
        return Error::OutOfMemory;
    }
    FlushBatch batch;
    Result<void> r = m_space.mapper().map_range(m_mmio_next, base, size,
                                                {.writable = true, .cache = CacheMode::Uncacheable},
                                                &batch, PageSize::Size2MiB);
    batch.flush();
    TRY(r);
    hal::VirtAddr va = m_mmio_next.offset(pa.value() - base.value());
    m_mmio_next = m_mmio_next.offset(size);
    return va;
}

KernelSpaceStats KernelSpace::stats() const {
    KernelSpaceStats s;
    if (!m_space.valid()) {
        return s;
    }
    s.direct_map_bytes = m_direct_map_bytes;
    s.table_frames = 1; // the PML4
    const auto* pml4 = static_cast<const uint64_t*>(hal::phys_to_virt(m_space.pml4()));
    const size_t direct_first = (kDirectMapBase.value() >> 39) & (kEntriesPerTable - 1);
    const size_t direct_end =
        direct_first + ((kDirectMapEnd.value() - kDirectMapBase.value()) >> 39);
    for (size_t i = kKernelHalfSlot; i < kEntriesPerTable; ++i) {
        uint64_t e = entry(pml4, i);
        if ((e & pte::kPresent) != 0) {
            ++s.table_frames;
            bool direct = i >= direct_first && i < direct_end;
            walk_stats(
                static_cast<const uint64_t*>(hal::phys_to_virt(hal::PhysAddr(e & pte::kAddress))),
                3, s, direct ? s.direct_map_pages : nullptr);
        }
    }
    s.stack_slots = m_slots;
    s.stacks_in_use = m_stacks_in_use;
    s.stacks_kept = m_stacks_kept;
    return s;
}

void KernelSpace::destroy() {
    if (!m_ready) {
        return;
    }
    release_kept_stacks();
    {
        auto guard = m_lock.lock_irqsave();
        for (uint64_t slot = 0; slot < m_slots && m_stacks_in_use > 0; ++slot) {
            if (m_free_slots.test(slot)) {
                continue;
            }
            auto s = static_cast<uint32_t>(slot);
            release_locked(s, m_space.translate(stack_in(s, {}).bottom).value().frame);
            --m_stacks_in_use;
        }
    }
    m_space.destroy();
    m_ready = false;
    m_direct_map_bytes = 0;
    m_framebuffer = hal::VirtAddr();
    m_slots = 0;
}

// NOTE: the two lines are the same on both machines for the same map: the simulator's kernel
// image is described at another size (hal::boot_image()), so they leave its pages out.
void log_kernel_space() {
    KernelSpaceStats s = kernel_space().stats();
    LogLine("vm")
        .str("direct map ")
        .size(s.direct_map_bytes)
        .str(" at ")
        .hex(kDirectMapBase.value())
        .str(" in ")
        .dec(s.direct_map_pages[2])
        .str(" 1G, ")
        .dec(s.direct_map_pages[1])
        .str(" 2M, ")
        .dec(s.direct_map_pages[0])
        .str(" 4K pages; ")
        .dec(s.table_frames)
        .str(" tables");
    LogLine("vm")
        .str(s.wx_violations == 0 ? "W^X holds" : "W^X VIOLATED")
        .str("; kernel stacks ")
        .size(kernel_space().stack_bytes())
        .str(" each, ")
        .dec(s.stack_slots)
        .str(" slots");
}

BOOT_CODE void start_kernel_space(const bootboot_abi::Info& info, uint64_t stack_bytes) {
    const bootboot_abi::Header& h = info.header;
    BootMemoryMap map = boot_memory_map();
    hal::BootImage image = hal::boot_image();
    if (image.image == hal::PhysAddr(0) || image.bootboot == hal::PhysAddr(0) ||
        image.environment == hal::PhysAddr(0)) {
        refuse("the loader's page tables do not map the kernel image and the BOOTBOOT pages");
    }
    uint64_t per_page = kPage / bootboot_abi::kInitStackSize;
    if (h.numcores > 1 && image.core_stack_pages * per_page < h.numcores) {
        refuse("the loader's core stacks are not one run of physical pages");
    }
    uint64_t image_bytes = image.data_end.value() - image.text_start.value();
    RamRange loader[kLoaderRanges] = {
        {image.image, image.image.offset(image_bytes)},
        {image.bootboot, image.bootboot.offset(kPage)},
        {image.environment, image.environment.offset(kPage)},
        {image.core_stacks, image.core_stacks.offset(image.core_stack_pages * kPage)},
        {hal::PhysAddr(h.initrd_ptr), hal::PhysAddr(h.initrd_ptr + h.initrd_size)},
    };
    size_t n = join_loader_ranges(map.regions, map.region_count, loader, kLoaderRanges);
    Result<size_t> ram =
        direct_map_ranges(map.regions, map.region_count, loader, n, s_direct_ranges,
                          sizeof s_direct_ranges / sizeof s_direct_ranges[0]);
    if (!ram.ok()) {
        fail("listing the RAM for the direct map", ram.error());
    }

    KernelSpaceDesc desc;
    desc.ram = s_direct_ranges;
    desc.ram_count = ram.value();
    desc.image = {image.text_start, image.text_end, image.rodata_start, image.rodata_end,
                  image.data_start, image.data_end, image.image};
    desc.bootboot = image.bootboot;
    desc.environment = image.environment;
    desc.framebuffer = hal::PhysAddr(h.fb_ptr);
    desc.framebuffer_bytes = h.fb_ptr != 0 ? h.fb_size : 0;
    desc.boot_stacks = image.core_stacks;
    desc.boot_stack_pages = image.core_stack_pages;
    desc.stack_pages = stack_bytes / kPage;
    Result<void> built = kernel_space().build(desc, FrameSource(bump_allocator(), frames()));
    if (!built.ok()) {
        fail("building the kernel address space", built.error());
    }

    hal::DeviceWindow windows[kMaxDeviceWindows];
    size_t count = hal::device_windows(windows, kMaxDeviceWindows);
    if (count > kMaxDeviceWindows) {
        fail("listing the backend's device windows", Error::CapacityExceeded);
    }
    for (size_t i = 0; i < count; ++i) {
        Result<hal::VirtAddr> va = kernel_space().map_device(windows[i].base, windows[i].bytes);
        if (!va.ok()) {
            fail("mapping a device window", va.error());
        }
        hal::device_window_mapped(i, va.value());
    }
    log_kernel_space();
}

BOOT_CODE void enter_kernel_space() {
    ASSERT(!hal::irq_enabled());
    hal::set_page_attribute_table(kPatValue);
    kernel_space().activate();
}

} // namespace core::mm
