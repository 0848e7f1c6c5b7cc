#pragma once

// The kernel's own GDT, one per CPU, each with the CPU's TSS: the loader's GDT (and UEFI's,
// under a level 2 loader) lives in memory the kernel does not own.

#include <stddef.h>
#include <stdint.h>

namespace x86_gdt {

inline constexpr uint16_t kKernelCode = 0x08;
inline constexpr uint16_t kKernelData = 0x10;
inline constexpr uint16_t kTss = 0x18;
// User mode, in the order SYSRET wants them after the base in STAR[63:48] (cpu/user.cpp): a
// 32-bit code slot (unused, left null), data, 64-bit code. With RPL 3.
inline constexpr uint16_t kUserBase = 0x28;
inline constexpr uint16_t kUserData = 0x30 | 3;
inline constexpr uint16_t kUserCode = 0x38 | 3;

// Interrupt stack table slots (1-based, as the IDT gate names them).
// NOTE: every exception but NMI runs on the fault stack: while all of them in the kernel are
// fatal this keeps the report independent of the 1 KiB bring-up stack, even when that stack is
// what failed. One in ring 3 leaves it at once for the thread's kernel stack (cpu/user.cpp).
// FIXME: page faults move to the current stack once core::on_page_fault can recover from them.
inline constexpr uint8_t kIstFault = 1; // double fault and every other exception
inline constexpr uint8_t kIstNmi = 2;

// Each IST stack's size. tools/check-stack.py checks the exception path against it.
inline constexpr size_t kIstStackSize = 1024;

// Builds CPU `index`'s GDT and TSS and loads them: CS, DS, ES, FS, GS and SS are reloaded
// (so this runs before GS gets its per-CPU base) and the task register points at the TSS.
void load(uint32_t index);

// Sets CPU `index`'s TSS RSP0: the stack an interrupt from user mode starts on.
void set_kernel_stack(uint32_t index, uint64_t top);

} // namespace x86_gdt
