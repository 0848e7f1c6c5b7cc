// Duet's QEMU loader: Multiboot header, the way from 32-bit protected mode to loader_main, and
// the bootstrap CPU's way into the kernel.
//
// QEMU's -kernel accepts only 32-bit Multiboot images, so the header uses the "a.out kludge"
// (flag 16): QEMU copies the flat binary to load_addr, zeroes up to bss_end_addr and jumps to
// entry_addr in 32-bit protected mode with paging off, EAX = 0x2BADB002 and EBX = the
// Multiboot information. This stub identity-maps the first 4 GiB with 2 MiB pages, enters
// long mode and calls loader_main(magic, mbi) on a stack of its own.

#define MB_MAGIC 0x1BADB002
// Modules page-aligned (0), memory information (1), the address fields below are valid (16).
#define MB_FLAGS 0x00010003

#define CR0_PE (1 << 0)
#define CR0_PG (1 << 31)
#define CR4_PAE (1 << 5)
#define CR4_OSFXSR (1 << 9)
#define MSR_EFER 0xC0000080
#define EFER_LME (1 << 8)
#define HANDOVER_CR0 0xC0000011
#define RFLAGS_ID (1 << 21)
#define HANDOVER_CR4 0x368
#define HANDOVER_CR3 0xA000
#define PTE_PRESENT_WRITABLE 0x3
#define PDE_LARGE 0x83
#define COM1 0x3F8
#define DEBUG_EXIT_PORT 0xF4
#define LOADER_ERROR 0x18

    .section .multiboot, "a", @progbits
    .balign 4
    .globl multiboot_header
multiboot_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)
    .long multiboot_header      // header_addr
    .long __loader_start        // load_addr
    .long __loader_load_end     // load_end_addr
    .long __loader_bss_end      // bss_end_addr
    .long loader_start32        // entry_addr

    .section .text.entry, "ax", @progbits
    .code32
    .globl loader_start32
loader_start32:
    cli
    cld
    // Keep the magic (checked by loader_main) and the information's address where neither
    // CPUID nor the string instructions below touch them.
    mov %eax, %ebp
    mov %ebx, %esi

    // Clear the loader's bss: the page tables and the stack live there.
    mov $__loader_bss_start, %edi
    mov $__loader_bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb

    // Long mode needs CPUID leaf 0x80000001 with EDX bit 29.
    mov $0x80000000, %eax
    cpuid
    cmp $0x80000001, %eax
    jb no_long_mode
    mov $0x80000001, %eax
    cpuid
    test $(1 << 29), %edx
    jz no_long_mode

    // PML4[0] -> PDPT; PDPT[0..3] -> the four PDs; PD entry i maps 2 MiB at i * 2 MiB.
    mov $boot_pdpt + PTE_PRESENT_WRITABLE, %eax
    mov %eax, boot_pml4
    mov $boot_pd + PTE_PRESENT_WRITABLE, %eax
    mov $boot_pdpt, %edi
    mov $4, %ecx
1:  mov %eax, (%edi)
    add $0x1000, %eax
    add $8, %edi
    loop 1b
    mov $PDE_LARGE, %eax
    mov $boot_pd, %edi
    mov $2048, %ecx
2:  mov %eax, (%edi)            // the upper half of each entry stays 0 from the clearing
    add $0x200000, %eax
    add $8, %edi
    loop 2b

    lgdt boot_gdt_pointer
    mov %cr4, %eax
    or $(CR4_PAE | CR4_OSFXSR), %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov %cr0, %eax
    or $(CR0_PG | CR0_PE), %eax
    mov %eax, %cr0
    ljmp $0x08, $loader_start64

// Without long mode there is no C++ to report from: say so here and leave through debug-exit.
no_long_mode:
    mov $no_long_mode_message, %esi
3:  lodsb
    test %al, %al
    jz 5f
    mov %al, %bl
    mov $COM1 + 5, %dx
4:  inb %dx, %al
    test $0x20, %al
    jz 4b
    mov $COM1, %dx
    mov %bl, %al
    outb %al, %dx
    jmp 3b
5:  mov $LOADER_ERROR, %al
    outb %al, $DEBUG_EXIT_PORT
6:  cli
    hlt
    jmp 6b

    .code64
loader_start64:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    lea loader_stack_top(%rip), %rsp
    mov %ebp, %edi              // magic
                                // ESI still holds the Multiboot information's address
    call loader_main            // RSP % 16 == 0 before the call, as the ABI wants
7:  cli
    hlt
    jmp 7b

// loader_enter_kernel(gdtr, index, apic_id, rdx): the bootstrap CPU's way into the kernel, with
// the CPU state the BIOS loader leaves on every core: CR3 = 0xA000 (the hand-over tables, which
// identity-map the loader too), CR4 = 0x368, EFER.LME, CR0 = 0xC0000011 (caches disabled, WP
// clear), the hand-over GDT at `gdtr` (below 0x8000) with CS = 0x08 and the data selectors 0x10,
// the real-mode IDT (base 0, limit 0x3FF), interrupts off; then RDI = index,
// RSP = -index * 1024, RBX = index * 1024, RAX = the APIC ID, RDX = `rdx`, the other
// general registers 0, and a jump (no return address) to loader_kernel_entry. The loader's
// code and stack stay reachable across the CR3 switch through the identity map.
    .globl loader_enter_kernel
    .type loader_enter_kernel, @function
loader_enter_kernel:
    cli
    mov %rdi, %r8
    mov %rdx, %r9
    mov %rcx, %r10
    mov $HANDOVER_CR3, %eax
    mov %rax, %cr3
    mov $HANDOVER_CR4, %eax
    mov %rax, %cr4
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov $HANDOVER_CR0, %eax
    mov %rax, %cr0
    lgdt (%r8)
    pushq $0x08
    lea 1f(%rip), %rax
    pushq %rax
    lretq
1:  mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    lidt real_mode_idt_pointer(%rip)
    // RFLAGS.ID stays set, as the BIOS loader's CPUID check leaves it on the bootstrap CPU.
    pushfq
    orl $RFLAGS_ID, (%rsp)
    popfq
    mov %rsi, %rdi
    mov %r9, %rax
    mov %r10, %rdx
    xor %ecx, %ecx
    xor %ebp, %ebp
    xor %r8d, %r8d
    xor %r9d, %r9d
    xor %r10d, %r10d
    xor %r11d, %r11d
    xor %r12d, %r12d
    xor %r13d, %r13d
    xor %r14d, %r14d
    xor %r15d, %r15d
    // The stack last, as the BIOS loader sets it: the arithmetic flags are what this
    // subtraction leaves.
    mov %rsi, %rbx
    shl $10, %rbx
    xor %esi, %esi
    xor %esp, %esp
    sub %rbx, %rsp
    jmp *loader_kernel_entry(%rip)
    .size loader_enter_kernel, . - loader_enter_kernel

    .section .rodata
    .balign 8
// The loader's own GDT while it runs: null, 64-bit code, data. The kernel gets another one,
// in the page at 0x7000 (loader/ap_start.S).
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
boot_gdt_end:
boot_gdt_pointer:
    .word boot_gdt_end - boot_gdt - 1
    .quad boot_gdt
no_long_mode_message:
    .asciz "loader: this CPU has no long mode\n"
    .balign 8
// The real-mode interrupt vector table, which the BIOS loader's bootstrap CPU leaves loaded.
real_mode_idt_pointer:
    .word 0x3FF
    .quad 0

    .section .data
    .balign 8
    .globl loader_kernel_entry
loader_kernel_entry:            // the kernel's e_entry, set by loader_main
    .quad 0

    .section .bss
    .balign 4096
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4 * 4096
    .balign 16
loader_stack:
    .skip 16384
loader_stack_top:

    .section .note.GNU-stack, "", @progbits
