// A user program's entry point: the kernel enters here in ring 3 with RSP at the top of the
// stack (16-byte aligned) and every register zeroed. main()'s result is the exit code. The
// top 1 KiB of the stack is not frames: log()'s scratch area and the IPC buffers
// (duet::kScratch, kSendBuffer, kReceiveBuffer).

    .section .text.start, "ax", @progbits
    .globl _start
    .type _start, @function
_start:
    xor %ebp, %ebp
    sub $1024, %rsp
    call main
    mov %eax, %edi
    xor %eax, %eax              // duet_abi::SysExit
    syscall
    ud2
    .size _start, . - _start

    .section .note.GNU-stack, "", @progbits
