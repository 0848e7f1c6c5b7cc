// Kernel thread contexts on bare metal (hal/context.hpp; cpu/context.cpp is the C++ half).
//
// A parked context is its stack pointer. Its stack holds, from that pointer up: r15, r14, r13,
// r12, rbx, rbp, RFLAGS, and the address to return to. Uses 64 bytes of the caller's stack,
// return address included (tools/check-stack.py: ASM_FRAMES).

    // The kernel keeps .debug_frame, not .eh_frame (boot/link.ld discards it): gdb unwinds
    // from there.
    .cfi_sections .debug_frame

    .section .text
    .global duet_context_switch
    .type duet_context_switch, @function
// uint64_t* duet_context_switch(uint64_t* save_rsp /* rdi */, uint64_t load_rsp /* rsi */)
// Returns, when the saved context is resumed, the save_rsp of the switch that resumed it.
duet_context_switch:
    pushfq
    // The interrupt state is saved above; none may arrive while the stacks change hands.
    cli
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, (%rdi)
    mov %rdi, %rax // what the resumed context's call returns: where this one was saved
    mov %rsi, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    // The interrupt state the resumed context saved (a new one's: off).
    popfq
    ret
    .size duet_context_switch, . - duet_context_switch

    .global duet_context_start
    .type duet_context_start, @function
// Where a new context begins: context_init() left entry in rbx and its argument in r12, and
// the stack 16-byte aligned, so the call below gives the entry the ABI's alignment.
duet_context_start:
    .cfi_startproc
    // NOTE: the outermost frame of a thread's stack: its return address is undefined, so that
    // a backtrace (gdb's bt, duet bt) ends here instead of reading on past the stack's top.
    .cfi_undefined rip
    mov %r12, %rdi
    call *%rbx
    // An entry must not return (hal/context.hpp).
    ud2
    .cfi_endproc
    .size duet_context_start, . - duet_context_start

    .section .note.GNU-stack, "", @progbits
