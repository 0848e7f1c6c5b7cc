// Interrupt and exception entry: one 16-byte stub per vector, then two common paths into C++.
//
// Every stub leaves the same frame: [vector] [error code] [RIP CS RFLAGS RSP SS], pushing a zero
// error code for the vectors where the CPU pushes none.
//
//   exceptions (0-31)  on an IST stack (cpu/gdt.hpp); the caller-saved registers are saved around
//                      x86_exception(frame), which reports and stops the machine, or returns
//                      having rewritten the frame (a user fault, a fixed-up user copy): IRETQ.
//   interrupts (32+)   on the interrupted stack; the caller-saved registers are saved around
//                      x86_interrupt(vector), then IRETQ.
//
// From user mode (the saved CS's RPL is 3) both paths SWAPGS on entry, and on exit if they
// return to user mode.
//
// NOTE: tools/check-stack.py counts what an interrupt costs the interrupted stack: the CPU's
// frame (40 bytes, plus up to 8 to align it), this stub's 16 bytes and the 72 bytes of saved
// registers below (kInterruptEntryBytes there). Keep them in step.

#define STUB_SIZE 16

// An interrupt or exception gate clears IF and TF but leaves RFLAGS.AC as it was: set inside a
// user copy (STAC), or by a program in ring 3 (POPF may set AC at any privilege level). With
// SMAP, AC set means ring 0 may touch user pages, so both entries clear it before any C++ runs
// (CLAC: an invalid opcode on a CPU without SMAP, hence the flag, which cpu/user.cpp sets only
// where CPUID has SMAP). IRETQ restores the interrupted AC from the frame: a user copy resumes
// with it set, the program with its own. Clobbers the arithmetic flags only.
.macro CLEAR_AC
    cmpb $0, x86_smap_enabled(%rip)
    je 9f
    clac
9:
.endm

    // The kernel keeps .debug_frame, not .eh_frame (boot/link.ld discards it).
    .cfi_sections .debug_frame

    .section .text.interrupt_entry, "ax", @progbits
    .balign STUB_SIZE
    .globl x86_interrupt_stubs
    .type x86_interrupt_stubs, @function
x86_interrupt_stubs:
    .set vector, 0
    .rept 256
    // NOTE: .org refuses to move backwards, so a stub that outgrows its 16 bytes fails the
    // build instead of shifting every later vector.
    .org x86_interrupt_stubs + vector * STUB_SIZE, 0xCC
    // The CPU pushes an error code for #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC and #SX.
    .if (vector == 8) || ((vector >= 10) && (vector <= 14)) || (vector == 17) || (vector == 21) || (vector == 29) || (vector == 30)
    .else
    pushq $0
    .endif
    pushq $vector
    .if vector < 32
    jmp exception_common
    .else
    jmp interrupt_common
    .endif
    .set vector, vector + 1
    .endr
    .org x86_interrupt_stubs + 256 * STUB_SIZE, 0xCC
    .size x86_interrupt_stubs, . - x86_interrupt_stubs

exception_common:
    // From user mode (CS's RPL 3): the kernel's GS base first. x86_exception() then either
    // stops the machine or, for a user fault or a fixed-up user copy, rewrote the frame, which
    // returns below (to ring 0: no SWAPGS back; a user fault's frame now points at
    // x86_user_fault_trampoline).
    testb $3, 24(%rsp)
    jz 1f
    swapgs
1:  CLEAR_AC
    pushq %rax
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    lea 72(%rsp), %rdi          // the frame (aligned to 16 like interrupt_common's)
    cld
    call x86_exception
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rax
    add $16, %rsp               // vector and error code
    testb $3, 8(%rsp)
    jz 2f
    swapgs
2:  iretq

// NOTE: the CFI below lets a debugger unwind from the handler into the interrupted code: the
// interrupted RIP and RSP are in the CPU's frame, the caller-saved registers where they are
// pushed. The CFA is the address just above the CPU's frame (SS at CFA - 8).
.macro PUSH_SAVED reg
    pushq %\reg
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset \reg, 0
.endm
.macro POP_SAVED reg
    popq %\reg
    .cfi_adjust_cfa_offset -8
    .cfi_restore \reg
.endm

interrupt_common:
    .cfi_startproc simple
    .cfi_signal_frame
    .cfi_def_cfa rsp, 56        // vector, error code, RIP CS RFLAGS RSP SS
    .cfi_offset rip, -40
    .cfi_offset rsp, -16
    // From user mode (CS's RPL 3): the kernel's GS base, and back before IRETQ.
    testb $3, 24(%rsp)
    jz 1f
    swapgs
1:  CLEAR_AC
    // The CPU aligned RSP to 16 before its 40-byte frame; with the stub's 16 bytes and these
    // 72, RSP is 16-byte aligned again at the call, as the ABI wants.
    PUSH_SAVED rax
    PUSH_SAVED rcx
    PUSH_SAVED rdx
    PUSH_SAVED rsi
    PUSH_SAVED rdi
    PUSH_SAVED r8
    PUSH_SAVED r9
    PUSH_SAVED r10
    PUSH_SAVED r11
    mov 72(%rsp), %rdi          // the vector
    mov 96(%rsp), %esi          // the interrupted CS: its RPL says whether from user mode
    and $3, %esi
    cld
    call x86_interrupt
    POP_SAVED r11
    POP_SAVED r10
    POP_SAVED r9
    POP_SAVED r8
    POP_SAVED rdi
    POP_SAVED rsi
    POP_SAVED rdx
    POP_SAVED rcx
    POP_SAVED rax
    add $16, %rsp               // vector and error code
    .cfi_adjust_cfa_offset -16
    testb $3, 8(%rsp)
    jz 2f
    swapgs
2:  iretq
    .cfi_endproc

    .section .note.GNU-stack, "", @progbits
