// The direct map and the MMU: CR3, INVLPG, the PAT, and what the kernel address space must map
// of the loader's work (hal::boot_image(), hal::device_windows()).

#include "boot/bootboot_symbols.hpp"
#include "cpu/percpu.hpp"
#include "cpu/user.hpp"
#include "cpu/x86.hpp"
#include "devices/lapic.hpp"

#include <core/lib/compiler.hpp>
#include <core/mm/layout.hpp>
#include <hal/firmware/loader_tables.hpp>
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

constexpr uint64_t kPage = bootboot_abi::kPageSize;

// What phys_to_virt() adds: 0 while the CPUs run on the loader's tables, whose identity map of
// the first 4 GiB is the direct map then; kDirectMapBase from the first load_page_table() on,
// since every table the core builds maps all RAM there.
uint64_t s_direct_map = 0;

uint64_t va_of(const char* p) {
    return reinterpret_cast<uint64_t>(p);
}

// A loader table entry, read through its identity map (only while its tables are loaded).
// NOTE: a lambda, not a function pointer: the walk's calls stay direct, which
// tools/check-stack.py needs to follow them.
constexpr auto read_loader_entry = [](uint64_t pa) {
    return *static_cast<const uint64_t*>(hal::phys_to_virt(hal::PhysAddr(pa)));
};

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
    // SMEP and SMAP only under the kernel's tables: nothing says the loader's keep user pages
    // away from the kernel's code and data.
    if (!x86_percpu::this_block().user_ready) [[unlikely]] {
        x86_user::init_this_cpu();
    }
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
    uint64_t cr3 = x86::read_cr3();
    b.image = PhysAddr(firmware::loader_translate(cr3, b.text_start.value(), read_loader_entry));
    b.bootboot =
        PhysAddr(firmware::loader_translate(cr3, bootboot_abi::kBootbootVirt, read_loader_entry));
    b.environment = PhysAddr(
        firmware::loader_translate(cr3, bootboot_abi::kEnvironmentVirt, read_loader_entry));
    firmware::CoreStacks stacks =
        firmware::loader_core_stacks(cr3, bootboot.header.numcores, read_loader_entry);
    b.core_stacks = PhysAddr(stacks.first);
    b.core_stack_pages = stacks.pages;
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
