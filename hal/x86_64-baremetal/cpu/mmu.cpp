// The direct map and the MMU.

#include "cpu/x86.hpp"

#include <hal/mmu.hpp>

namespace hal {

void* phys_to_virt(PhysAddr pa) {
    // FIXME: temporary until the kernel builds its own address space (issue "kernel address
    // space"): this is the loader's identity map, which covers only the first 4 GiB.
    return reinterpret_cast<void*>(pa.value());
}

void load_page_table(PhysAddr pml4) {
    x86::write_cr3(pml4.value());
}

void flush_tlb_page(VirtAddr va) {
    asm volatile("invlpg (%0)" : : "r"(va.value()) : "memory");
}

void flush_tlb_all() {
    // Reloading CR3 drops every non-global TLB entry, which is what the contract promises.
    x86::write_cr3(x86::read_cr3());
}

} // namespace hal
