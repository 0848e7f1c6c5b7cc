#include "loader/page_tables.hpp"

namespace loader {

namespace {

constexpr uint64_t kTableLink = kPtePresent | kPteWritable;
constexpr uint64_t k2MiB = 2ull << 20;

uint64_t* table(uint64_t* tables, size_t page) {
    return tables + page * kEntriesPerTable;
}

uint64_t table_phys(const firmware::BootPlan& plan, size_t page) {
    return plan.tables + page * firmware::kPage;
}

} // namespace

const char* describe(TableError e) {
    switch (e) {
    case TableError::None:
        return "no error";
    case TableError::KernelTooBig:
        return "the kernel segment does not fit its page table";
    case TableError::TooManyStacks:
        return "the core stacks do not fit their page table";
    }
    return "unknown error";
}

TableError build_kernel_tables(uint64_t* tables, const firmware::BootPlan& plan,
                               uint64_t kernel_bytes) {
    uint64_t kernel_pages = (kernel_bytes + firmware::kPage - 1) / firmware::kPage;
    size_t stack_first_slot = kEntriesPerTable - plan.stack_pages;
    if (plan.stack_pages > kEntriesPerTable - kKernelFirstSlot) {
        return TableError::TooManyStacks;
    }
    if (kernel_pages > stack_first_slot - kKernelFirstSlot) {
        return TableError::KernelTooBig;
    }

    for (size_t i = 0; i < firmware::kTablePages * kEntriesPerTable; ++i) {
        tables[i] = 0;
    }

    // The identity map of the first 4 GiB.
    table(tables, kPml4Page)[0] = table_phys(plan, kLowPdptPage) | kTableLink;
    for (size_t gib = 0; gib < kLowPdCount; ++gib) {
        table(tables, kLowPdptPage)[gib] = table_phys(plan, kLowPdPage + gib) | kTableLink;
        uint64_t* pd = table(tables, kLowPdPage + gib);
        for (size_t i = 0; i < kEntriesPerTable; ++i) {
            uint64_t phys = (gib * kEntriesPerTable + i) * k2MiB;
            pd[i] = phys | kPtePresent | kPteWritable | kPteLarge;
        }
    }

    // The top 2 MiB: PML4, PDPT and PD slot 511 each, then one page table.
    constexpr size_t kLast = kEntriesPerTable - 1;
    table(tables, kPml4Page)[kLast] = table_phys(plan, kHighPdptPage) | kTableLink;
    table(tables, kHighPdptPage)[kLast] = table_phys(plan, kHighPdPage) | kTableLink;
    table(tables, kHighPdPage)[kLast] = table_phys(plan, kHighPtPage) | kTableLink;
    uint64_t* pt = table(tables, kHighPtPage);
    pt[kBootbootSlot] = plan.bootboot | kPtePresent;
    pt[kEnvironmentSlot] = plan.environment | kPtePresent;
    for (uint64_t i = 0; i < kernel_pages; ++i) {
        pt[kKernelFirstSlot + i] = (plan.kernel + i * firmware::kPage) | kTableLink;
    }
    // Stack page k (cores 4k..4k+3) sits k pages below the top of the address space.
    for (uint64_t k = 0; k < plan.stack_pages; ++k) {
        pt[kLast - k] = (plan.stacks + k * firmware::kPage) | kTableLink;
    }
    return TableError::None;
}

} // namespace loader
