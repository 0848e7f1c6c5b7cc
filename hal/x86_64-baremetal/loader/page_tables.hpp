#pragma once

// The page tables a BOOTBOOT level 1 loader hands the kernel (CR3 at entry):
//   - 0 to 4 GiB identity-mapped with 2 MiB pages, read/write, supervisor;
//   - the top 2 MiB through one page table: the bootboot page and the environment page
//     (read-only), the kernel segment (read/write) from 0xFFFFFFFFFFE02000, and the core
//     stacks at the very top, growing down from 2^64 (core i's stack top is -i * 1024).
// Pure: writes only the table pages it is given; the physical addresses come from the plan.

#include <hal/firmware/boot_area.hpp>

#include <stddef.h>
#include <stdint.h>

namespace loader {

inline constexpr size_t kEntriesPerTable = 512;

// Table pages, in the order they sit at plan.tables.
inline constexpr size_t kPml4Page = 0;
inline constexpr size_t kLowPdptPage = 1;
inline constexpr size_t kLowPdPage = 2; // four of them, one per GiB
inline constexpr size_t kLowPdCount = 4;
inline constexpr size_t kHighPdptPage = 6;
inline constexpr size_t kHighPdPage = 7;
inline constexpr size_t kHighPtPage = 8;
static_assert(kHighPtPage + 1 == firmware::kTablePages);

// Page table entry bits.
inline constexpr uint64_t kPtePresent = 1ull << 0;
inline constexpr uint64_t kPteWritable = 1ull << 1;
inline constexpr uint64_t kPteLarge = 1ull << 7;

// PT slots of the top 2 MiB.
inline constexpr size_t kBootbootSlot = 0;
inline constexpr size_t kEnvironmentSlot = 1;
inline constexpr size_t kKernelFirstSlot = 2;

enum class TableError {
    None,
    KernelTooBig,  // the segment would not fit the PT slots before the stacks
    TooManyStacks, // plan.stack_pages would reach the kernel's slots
};

const char* describe(TableError e);

// Fills `tables` (firmware::kTablePages * 512 entries, the loader's view of plan.tables) with
// the tables for a kernel segment of `kernel_bytes` bytes at plan.kernel. Every entry not
// described above is zero.
TableError build_kernel_tables(uint64_t* tables, const firmware::BootPlan& plan,
                               uint64_t kernel_bytes);

} // namespace loader
