// The BOOTBOOT entry point. Every core the loader started arrives here at once, in long mode
// with interrupts off, on its 1 KiB loader stack (RSP = -index * 1024, so RSP % 16 == 0) and
// with its core index in RDI. Nothing else about the CPU state is trusted.

    // .text.boot.entry goes first in .text.boot (boot/link.ld), so the image starts at _start.
    .section .text.boot.entry, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    cli
    cld
    // NOTE: RSP is 16-byte aligned here, so a plain call leaves the callee the ABI's
    // RSP % 16 == 8. Jumping into C++ instead would misalign every frame below.
    // RDI (the core index) is passed through untouched.
    call duet_kernel_entry
    // duet_kernel_entry never returns; should it ever, stop this core.
1:  cli
    hlt
    jmp 1b
    .size _start, . - _start

    .section .note.GNU-stack, "", @progbits
