// User mode: the first entry into ring 3, the SYSCALL entry and its return, the user-fault
// trampoline, and the user-memory copy with its exception fix-up (cpu/user.cpp explains).
//
// Selectors (cpu/gdt.hpp): user data 0x33, user code 0x3b. Per-CPU block offsets
// (cpu/percpu.hpp): kernel_rsp 40, user_rsp 48.

#define USER_DATA 0x33
#define USER_CODE 0x3b
#define PERCPU_KERNEL_RSP 40
#define PERCPU_USER_RSP 48

    .cfi_sections .debug_frame
    .section .text.user_entry, "ax", @progbits

// [[noreturn]] void x86_enter_user(uint64_t entry, uint64_t stack_top, uint64_t arg)
// An IRETQ frame for ring 3; every register the program could read is zeroed.
    .globl x86_enter_user
    .type x86_enter_user, @function
x86_enter_user:
    cli
    pushq $USER_DATA            // SS
    pushq %rsi                  // RSP
    pushq $0x202                // RFLAGS: IF
    pushq $USER_CODE            // CS
    pushq %rdi                  // RIP
    mov %rdx, %rdi
    xor %eax, %eax
    xor %ebx, %ebx
    xor %ecx, %ecx
    xor %edx, %edx
    xor %esi, %esi
    xor %ebp, %ebp
    xor %r8d, %r8d
    xor %r9d, %r9d
    xor %r10d, %r10d
    xor %r11d, %r11d
    xor %r12d, %r12d
    xor %r13d, %r13d
    xor %r14d, %r14d
    xor %r15d, %r15d
    swapgs                      // the kernel's GS base waits in IA32_KERNEL_GS_BASE
    iretq
    .size x86_enter_user, . - x86_enter_user

// SYSCALL lands here (IA32_LSTAR) with RCX the user's RIP, R11 its RFLAGS, interrupts off
// (IA32_FMASK), still on the user's stack. Builds an IRETQ frame on the thread's kernel stack,
// then core::user::SyscallArgs (RAX, RDI, RSI, RDX, R10, R8, R9, lowest address first) under
// it, and calls x86_syscall(&args) with interrupts on.
    .globl x86_syscall_entry
    .type x86_syscall_entry, @function
x86_syscall_entry:
    swapgs
    movq %rsp, %gs:PERCPU_USER_RSP
    movq %gs:PERCPU_KERNEL_RSP, %rsp
    pushq $USER_DATA            // SS
    pushq %gs:PERCPU_USER_RSP   // RSP
    pushq %r11                  // RFLAGS
    pushq $USER_CODE            // CS
    pushq %rcx                  // RIP
    pushq %r9
    pushq %r8
    pushq %r10
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rax
    // 12 words on a 16-byte aligned stack top: aligned for the call.
    mov %rsp, %rdi
    cld
    sti
    call x86_syscall            // the result in RAX
    cli
    add $8, %rsp                // the number
    popq %rdi
    popq %rsi
    popq %rdx
    popq %r10
    popq %r8
    popq %r9
    // The IRETQ frame is left. SYSRET loads RIP from RCX without checking it: a non-canonical
    // one would fault in ring 0 on the user's stack. Anything outside the user half goes back
    // by IRETQ instead, which checks in the kernel's context.
    movq (%rsp), %rcx
    movq %rcx, %r11
    shr $47, %r11
    jnz 1f
    movq 16(%rsp), %r11         // RFLAGS
    movq 24(%rsp), %rsp         // the user's RSP: no interrupt may come from here on
    swapgs
    sysretq
1:  swapgs
    iretq
    .size x86_syscall_entry, . - x86_syscall_entry

// A fault in user mode: x86_exception() pointed the exception's return here, in ring 0 on the
// thread's kernel stack with interrupts off, RSP at the core::user::UserFault it wrote.
    .globl x86_user_fault_trampoline
    .type x86_user_fault_trampoline, @function
x86_user_fault_trampoline:
    mov %rsp, %rdi
    call x86_user_fault_exit    // never returns
    ud2
    .size x86_user_fault_trampoline, . - x86_user_fault_trampoline

// uint64_t x86_copy_user(void* dst, const void* src, uint64_t bytes): the bytes NOT copied.
// The caller (cpu/user.cpp) checked that the user side lies in the user half. A page fault on
// the REP MOVSB resumes at x86_copy_user_fixup (x86_exception's fix-up table), where RCX
// still counts the bytes left.
    .globl x86_copy_user
    .globl x86_copy_user_access
    .globl x86_copy_user_fixup
    .type x86_copy_user, @function
x86_copy_user:
    mov %rdx, %rcx
    cmpb $0, x86_smap_enabled(%rip)
    je x86_copy_user_access
    stac
x86_copy_user_access:
    rep movsb
x86_copy_user_fixup:
    cmpb $0, x86_smap_enabled(%rip)
    je 1f
    clac
1:  mov %rcx, %rax
    ret
    .size x86_copy_user, . - x86_copy_user

    .section .note.GNU-stack, "", @progbits
