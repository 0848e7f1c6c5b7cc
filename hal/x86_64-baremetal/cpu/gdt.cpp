// Per-CPU GDT, TSS and interrupt stacks, all static: nothing here needs the frame allocator.

#include "cpu/gdt.hpp"

#include <core/lib/compiler.hpp>
#include <hal/bootboot.hpp>

namespace x86_gdt {

namespace {

struct [[gnu::packed]] Tss {
    uint32_t reserved0;
    uint64_t rsp[3];
    uint64_t reserved1;
    uint64_t ist[7];
    uint64_t reserved2;
    uint16_t reserved3;
    uint16_t iomap_base;
};
static_assert(sizeof(Tss) == 104);

struct [[gnu::packed]] GdtPointer {
    uint16_t limit;
    uint64_t base;
};

constexpr uint64_t kCode64 = 0x00AF'9A00'0000'FFFF;     // present, ring 0, execute/read, long mode
constexpr uint64_t kData = 0x00CF'9200'0000'FFFF;       // present, ring 0, read/write
constexpr uint64_t kUserCode64 = 0x00AF'FA00'0000'FFFF; // as kCode64, ring 3
constexpr uint64_t kUserData64 = 0x00CF'F200'0000'FFFF; // as kData, ring 3
constexpr uint64_t kTssAvailable = 0x89;                // present, 64-bit TSS (available)
// null, code, data, TSS (two slots), user: unused 32-bit code, data, 64-bit code
constexpr size_t kEntries = 8;

struct alignas(16) CpuTables {
    uint64_t gdt[kEntries];
    Tss tss;
};

struct alignas(16) IstStack {
    uint8_t bytes[kIstStackSize];
};

CpuTables s_tables[bootboot_abi::kMaxCores];
IstStack s_fault_stacks[bootboot_abi::kMaxCores];
IstStack s_nmi_stacks[bootboot_abi::kMaxCores];

uint64_t top(IstStack& s) {
    return reinterpret_cast<uint64_t>(s.bytes + sizeof s.bytes);
}

} // namespace

BOOT_CODE void load(uint32_t index) {
    CpuTables& t = s_tables[index];
    t.tss = Tss{};
    t.tss.ist[kIstFault - 1] = top(s_fault_stacks[index]);
    t.tss.ist[kIstNmi - 1] = top(s_nmi_stacks[index]);
    t.tss.iomap_base = sizeof(Tss); // no I/O permission bitmap

    auto base = reinterpret_cast<uint64_t>(&t.tss);
    uint64_t limit = sizeof(Tss) - 1;
    t.gdt[0] = 0;
    t.gdt[kKernelCode / 8] = kCode64;
    t.gdt[kKernelData / 8] = kData;
    t.gdt[kTss / 8] = (limit & 0xFFFF) | ((base & 0xFF'FFFF) << 16) | (kTssAvailable << 40) |
                      (((limit >> 16) & 0xF) << 48) | (((base >> 24) & 0xFF) << 56);
    t.gdt[kTss / 8 + 1] = base >> 32;
    t.gdt[kUserBase / 8] = 0;
    t.gdt[kUserData / 8] = kUserData64;
    t.gdt[kUserCode / 8] = kUserCode64;

    GdtPointer gdtr{sizeof t.gdt - 1, reinterpret_cast<uint64_t>(t.gdt)};
    // A far return reloads CS; the data selectors follow, then the task register.
    asm volatile("lgdt %0\n\t"
                 "pushq %1\n\t"
                 "leaq 1f(%%rip), %%rax\n\t"
                 "pushq %%rax\n\t"
                 "lretq\n"
                 "1:\n\t"
                 "movl %2, %%eax\n\t"
                 "movl %%eax, %%ds\n\t"
                 "movl %%eax, %%es\n\t"
                 "movl %%eax, %%fs\n\t"
                 "movl %%eax, %%gs\n\t"
                 "movl %%eax, %%ss\n\t"
                 "ltr %w3"
                 :
                 : "m"(gdtr), "i"(kKernelCode), "i"(kKernelData), "r"(kTss)
                 : "rax", "memory");
}

void set_kernel_stack(uint32_t index, uint64_t top) {
    s_tables[index].tss.rsp[0] = top;
}

} // namespace x86_gdt
