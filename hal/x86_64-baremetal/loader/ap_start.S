// Duet's QEMU loader: how the other cores get from their reset state to the kernel's entry.
//
// Two position-fixed blobs that loader/smp.cpp copies out of the image and fills in:
//
//   ap_trampoline  copied to AP_TRAMPOLINE_BASE, a page below 1 MiB, where the start-up IPI
//                  sends each AP in real mode. It goes to 32-bit protected mode, then to long
//                  mode on the kernel's page tables with the bootstrap CPU's CR0, CR4 and EFER,
//                  and jumps to the hand-over stub.
//   ap_handover    copied into the boot area's GDT page, behind the GDT. The AP loads that GDT,
//                  enables its local APIC, finds its core index, reports itself and spins until
//                  the bootstrap CPU releases it; then it enters the kernel as BOOTBOOT says.
//
// NOTE: the trampoline page and the loader's image are free memory in the kernel's map, so no AP
// may still run there once the bootstrap CPU has jumped to the kernel (which may reuse them at
// once). The APs therefore wait and leave from the GDT page, which the boot area keeps out of
// the map; they are off the trampoline before the bootstrap CPU releases them.

#define AP_TRAMPOLINE_BASE 0x8000
// Where a trampoline symbol sits once the blob is copied to AP_TRAMPOLINE_BASE.
#define T(sym) ((sym) - ap_trampoline_start + AP_TRAMPOLINE_BASE)

#define CR0_PE (1 << 0)
#define MSR_EFER 0xC0000080
#define CODE64 0x08
#define DATA 0x10
#define CODE32 0x18
#define LAPIC_SVR 0xF0
#define LAPIC_SVR_ENABLED_SPURIOUS_FF 0x1FF
#define NO_INDEX 0xFFFF

    // The start-up IPI's vector is the page number, so the base must be page-aligned and
    // below 1 MiB; the blob must fit its page.
    .globl ap_trampoline_base
    .set ap_trampoline_base, AP_TRAMPOLINE_BASE

    .section .text.ap_trampoline, "ax", @progbits
    .balign 16
    .globl ap_trampoline_start
    .code16
ap_trampoline_start:
    cli
    cld
    xor %ax, %ax
    mov %ax, %ds
    lgdtl T(ap_trampoline_gdtr)
    mov %cr0, %eax
    or $CR0_PE, %eax
    mov %eax, %cr0
    ljmpl $CODE32, $T(ap_trampoline_32)

    .code32
ap_trampoline_32:
    mov $DATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov T(ap_trampoline_cr4), %eax      // PAE among them
    mov %eax, %cr4
    mov T(ap_trampoline_cr3), %eax      // the kernel's tables, below 4 GiB
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    mov T(ap_trampoline_efer), %eax     // LME among them; EFER's high half is reserved
    xor %edx, %edx
    wrmsr
    mov T(ap_trampoline_cr0), %eax      // PG and PE: long mode is active from here
    mov %eax, %cr0
    ljmp $CODE64, $T(ap_trampoline_64)

    .code64
ap_trampoline_64:
    mov T(ap_trampoline_handover), %rax
    jmp *%rax

    .balign 8
ap_trampoline_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF            // 0x08: 64-bit code
    .quad 0x00CF92000000FFFF            // 0x10: data
    .quad 0x00CF9A000000FFFF            // 0x18: 32-bit code, for the step through protected mode
ap_trampoline_gdt_end:
ap_trampoline_gdtr:
    .word ap_trampoline_gdt_end - ap_trampoline_gdt - 1
    .long T(ap_trampoline_gdt)

    // Filled in by the loader (loader/smp.cpp) after the copy.
    .balign 8
    .globl ap_trampoline_cr0, ap_trampoline_cr3, ap_trampoline_cr4, ap_trampoline_efer
    .globl ap_trampoline_handover
ap_trampoline_cr0:
    .quad 0
ap_trampoline_cr3:
    .quad 0
ap_trampoline_cr4:
    .quad 0
ap_trampoline_efer:
    .quad 0
ap_trampoline_handover:
    .quad 0
    .globl ap_trampoline_end
ap_trampoline_end:

// Position-independent: it runs wherever the loader copied it.
    .section .text.ap_handover, "ax", @progbits
    .balign 16
    .globl ap_handover_start
ap_handover_start:
    lgdt ap_handover_gdtr(%rip)
    mov $DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    pushq $CODE64
    lea 1f(%rip), %rax
    pushq %rax
    lretq
1:  mov ap_handover_lapic(%rip), %rax
    movl $LAPIC_SVR_ENABLED_SPURIOUS_FF, LAPIC_SVR(%rax)

    // The core index: this CPU's initial APIC ID, looked up in the loader's table.
    mov $1, %eax
    cpuid
    shr $24, %ebx
    lea ap_handover_index(%rip), %rax
    movzwl (%rax,%rbx,2), %edi
    cmp $NO_INDEX, %edi
    je 3f
    lea ap_handover_arrived(%rip), %rax
    movb $1, (%rax,%rdi)
2:  pause
    cmpl $0, ap_handover_release(%rip)
    je 2b

    // As loader_enter_kernel does for the bootstrap CPU: RSP = -index * 1024, RDI = index,
    // and the BIOS loader's extras RAX = index, RBX = index * 1024.
    mov %rdi, %rbx
    shl $10, %rbx
    mov %rbx, %rsp
    neg %rsp
    mov %rdi, %rax
    mov ap_handover_entry(%rip), %rsi
    xor %ecx, %ecx
    xor %edx, %edx
    xor %ebp, %ebp
    xor %r8d, %r8d
    xor %r9d, %r9d
    xor %r10d, %r10d
    xor %r11d, %r11d
    xor %r12d, %r12d
    xor %r13d, %r13d
    xor %r14d, %r14d
    xor %r15d, %r15d
    jmp *%rsi

    // A CPU the loader did not number (it should never have been started): park it.
3:  cli
    hlt
    jmp 3b

    // Filled in by the loader after the copy.
    .balign 8
    .globl ap_handover_gdtr, ap_handover_lapic, ap_handover_entry, ap_handover_release
    .globl ap_handover_arrived, ap_handover_index
ap_handover_gdtr:
    .word 0
    .quad 0
    .balign 8
ap_handover_lapic:
    .quad 0
ap_handover_entry:
    .quad 0
ap_handover_release:
    .long 0
ap_handover_arrived:                    // one byte per core index, set when the AP is here
    .fill 256, 1, 0
    .balign 2
ap_handover_index:                      // core index by APIC ID; NO_INDEX for none
    .fill 256, 2, NO_INDEX
    .globl ap_handover_end
ap_handover_end:

    .section .note.GNU-stack, "", @progbits
