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

// A thread's entry point (duet::start_thread): the kernel enters here in ring 3 with RDI the
// top of the thread's stack and RSP 1040 bytes below it, where start_thread left the thread's
// function and its argument; the 1 KiB above is the thread's scratch area. The function is
// called with (top, argument); when it returns, the thread ends.
    .globl duet_thread_entry
    .type duet_thread_entry, @function
duet_thread_entry:
    xor %ebp, %ebp
    mov (%rsp), %rax
    mov 8(%rsp), %rsi
    call *%rax
    mov $16, %eax               // duet_abi::SysThreadExit
    syscall
    ud2
    .size duet_thread_entry, . - duet_thread_entry

    .section .note.GNU-stack, "", @progbits
