#pragma once

// User mode on x86_64 (cpu/user.cpp, cpu/user_entry.S): SYSCALL/SYSRET, SMEP/SMAP, and what
// the exception path does with a fault in user mode or in a user copy.

#include "cpu/interrupts.hpp"

#include <stdint.h>

// True once a CPU has turned SMAP on (every CPU of the machine has it then): STAC and CLAC are
// valid instructions. Read by the user copy and the interrupt and exception entries.
extern "C" bool x86_smap_enabled;

namespace x86_user {

// Sets up the calling CPU for user mode: EFER.SCE, STAR, LSTAR, FMASK (IF, DF, AC and TF
// cleared on entry), IA32_KERNEL_GS_BASE, and CR4.SMEP, CR4.SMAP and CR4.UMIP where CPUID has
// them.
// Once per CPU, from its first hal::load_page_table() (interrupts off, bring-up stack: small
// and with direct calls only).
void init_this_cpu();

// For x86_exception(): an exception from user mode (not an NMI or machine check) becomes a
// return to x86_user_fault_trampoline on the thread's kernel stack, which kills the process;
// a page fault on a user copy's access, at a user address, resumes at its fix-up. True if the
// frame was rewritten so (the exception returns); false for everything else.
bool redirect_fault(ExceptionFrame* frame, uint64_t cr2);

} // namespace x86_user
