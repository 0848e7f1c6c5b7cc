// The direct map and the MMU: CR3, INVLPG, the PAT, and what the kernel address space must map
// of the loader's work (hal::boot_image(), hal::device_windows()).

#include "boot/bootboot_symbols.hpp"
#include "cpu/x86.hpp"
#include "devices/lapic.hpp"

#include <core/lib/compiler.hpp>
#include <core/mm/layout.hpp>
#include <hal/mmu.hpp>

// The kernel image's section bounds, from boot/link.ld (page-aligned).
extern "C" {
extern const char __text_start[];
extern const char __text_end[];
extern const char __rodata_start[];
extern const char __rodata_end[];
extern const char __data_start[];
extern const char __data_end[];
}

namespace {

constexpr uint32_t kMsrPat = 0x277;

constexpr uint64_t kPresent = 1ull << 0;
constexpr uint64_t kLarge = 1ull << 7;
constexpr uint64_t kAddress = 0x000F'FFFF'FFFF'F000ull;
constexpr uint64_t kPage = bootboot_abi::kPageSize;

// What phys_to_virt() adds: 0 while the CPUs run on the loader's tables, whose identity map of
// the first 4 GiB is the direct map then; kDirectMapBase from the first load_page_table() on,
// since every table the core builds maps all RAM there.
uint64_t s_direct_map = 0;

uint64_t va_of(const char* p) {
    return reinterpret_cast<uint64_t>(p);
}

// The physical address `va` has under the calling CPU's tables, or 0 if it has none. Only
// while those are the loader's: their tables are reached through its identity map.
BOOT_CODE uint64_t loader_translate(uint64_t va) {
    uint64_t table = x86::read_cr3() & kAddress;
    for (unsigned level = 4; level >= 1; --level) {
        unsigned shift = 12 + 9 * (level - 1);
        const auto* entries = static_cast<const uint64_t*>(hal::phys_to_virt(hal::PhysAddr(table)));
        uint64_t e = entries[(va >> shift) & 511];
        if ((e & kPresent) == 0) {
            return 0;
        }
        if (level == 1 || (level <= 3 && (e & kLarge) != 0)) {
            uint64_t page = 1ull << shift;
            return (e & kAddress & ~(page - 1)) + (va & (page - 1));
        }
        table = e & kAddress;
    }
    return 0;
}

} // namespace

namespace hal {

void* phys_to_virt(PhysAddr pa) {
    return reinterpret_cast<void*>(__atomic_load_n(&s_direct_map, __ATOMIC_RELAXED) + pa.value());
}

void load_page_table(PhysAddr pml4) {
    x86::write_cr3(pml4.value());
    // Ring 0 honours read-only pages from here on, on the kernel's tables (W^X): under the
    // loader's, which map the kernel image read-only, the kernel's writes to its own data
    // relied on CR0.WP being clear (boot/kernel_entry.cpp).
    x86::write_cr0(x86::read_cr0() | x86::kCr0Wp);
    // Every table the core builds has the direct map and the device windows; the loader's
    // tables are never loaded again.
    __atomic_store_n(&s_direct_map, core::mm::kDirectMapBase.value(), __ATOMIC_RELAXED);
    lapic::use_kernel_mapping();
}

void flush_tlb_page(VirtAddr va) {
    asm volatile("invlpg (%0)" : : "r"(va.value()) : "memory");
}

void flush_tlb_all() {
    // Reloading CR3 drops every non-global TLB entry, which is what the contract promises.
    x86::write_cr3(x86::read_cr3());
}

void set_page_attribute_table(uint64_t pat) {
    // Nothing may stay cached under a memory type that changes meaning (SDM vol. 3, 11.12.4):
    // write back and invalidate the caches around the change, then drop the TLB.
    asm volatile("wbinvd" : : : "memory");
    x86::wrmsr(kMsrPat, pat);
    asm volatile("wbinvd" : : : "memory");
    x86::write_cr3(x86::read_cr3());
}

BOOT_CODE BootImage boot_image() {
    BootImage b;
    b.text_start = VirtAddr(va_of(__text_start));
    b.text_end = VirtAddr(va_of(__text_end));
    b.rodata_start = VirtAddr(va_of(__rodata_start));
    b.rodata_end = VirtAddr(va_of(__rodata_end));
    b.data_start = VirtAddr(va_of(__data_start));
    b.data_end = VirtAddr(va_of(__data_end));
    // NOTE: BOOTBOOT reports none of these physical addresses; its page tables hold them.
    b.image = PhysAddr(loader_translate(b.text_start.value()));
    b.bootboot = PhysAddr(loader_translate(bootboot_abi::kBootbootVirt));
    b.environment = PhysAddr(loader_translate(bootboot_abi::kEnvironmentVirt));
    // The core stacks, four to a page, downwards from 2^64: one run of physical pages upwards.
    uint64_t per_page = kPage / bootboot_abi::kInitStackSize;
    uint64_t pages = (bootboot.header.numcores + per_page - 1) / per_page;
    uint64_t first = loader_translate(0 - kPage);
    for (uint64_t k = 0; k < pages; ++k) {
        if (first == 0 || loader_translate(0 - (k + 1) * kPage) != first + k * kPage) {
            return b;
        }
    }
    b.core_stacks = PhysAddr(first);
    b.core_stack_pages = pages;
    return b;
}

size_t device_windows(DeviceWindow* out, size_t capacity) {
    if (capacity > 0) {
        out[0] = DeviceWindow{PhysAddr(lapic::physical_base()), kPage};
    }
    return 1;
}

void device_window_mapped(size_t index, VirtAddr va) {
    if (index == 0) {
        lapic::set_kernel_mapping(va.value());
    }
}

} // namespace hal
