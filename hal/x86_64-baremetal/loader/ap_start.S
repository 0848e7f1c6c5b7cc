// Duet's QEMU loader: the page every other core runs in until it enters the kernel.
//
// One position-fixed blob that loader/smp.cpp copies to AP_BLOB_BASE (0x7000, the BIOS
// loader's trampoline page: the start-up IPI's vector 7) and fills in. The whole page is left
// out of the kernel's memory map, as the BIOS loader's own image below 0x8000 is, so the cores
// may still be in it after the bootstrap CPU has entered the kernel. It holds:
//
//   - the trampoline, where the start-up IPI sends each core in real mode: it goes to 32-bit
//     protected mode on a GDT of its own, enables its local APIC (SVR bit 8, as the BIOS
//     loader's cores do), marks its arrival by its APIC ID and spins with paging off until the
//     bootstrap CPU releases it;
//   - then the BIOS loader's way into long mode, which every core takes alike: CR4 = 0x368,
//     CR3 = 0xA000, EFER.LME, CR0 = 0xC0000011 (paging with caches disabled, WP clear), the
//     hand-over GDT, CS = 0x08, the data selectors 0x10, and the entry point with
//     RDI = index, RSP = -index * 1024, RBX = index * 1024, RAX = RDX = its APIC ID;
//   - the hand-over GDT, the one every core (the bootstrap CPU too) leaves loaded: the BIOS
//     loader's descriptors (null, 64-bit code, data, an unused TSS, null; limit 0x27).
//
// The cores never touch the loader's image or stack: it is free memory in the kernel's map.

#define AP_BLOB_BASE 0x7000
// Where a blob symbol sits once the blob is copied to AP_BLOB_BASE.
#define T(sym) ((sym) - ap_blob_start + AP_BLOB_BASE)

#define CR0_PE (1 << 0)
#define HANDOVER_CR0 0xC0000011
#define HANDOVER_CR4 0x368
#define HANDOVER_CR3 0xA000
#define MSR_EFER 0xC0000080
#define EFER_LME 0x100
// Selectors of the trampoline's own GDT (protected mode only).
#define TRAMP_CODE32 0x08
#define TRAMP_DATA 0x10
// Selectors of the hand-over GDT.
#define CODE64 0x08
#define DATA 0x10
#define LAPIC_ID 0x20
#define LAPIC_SVR 0xF0
#define LAPIC_SVR_ENABLE 0x100
#define NO_INDEX 0xFFFF

    .globl ap_blob_base
    .set ap_blob_base, AP_BLOB_BASE

    .section .text.ap_blob, "ax", @progbits
    .balign 16
    .globl ap_blob_start
    .code16
ap_blob_start:
    cli
    cld
    xor %ax, %ax
    mov %ax, %ds
    lgdtl T(ap_tramp_gdtr)
    mov %cr0, %eax
    or $CR0_PE, %eax
    mov %eax, %cr0
    ljmpl $TRAMP_CODE32, $T(ap_prot)

    .code32
ap_prot:
    mov $TRAMP_DATA, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %fs
    mov %ax, %gs
    mov %ax, %ss
    mov T(ap_lapic), %esi
    orl $LAPIC_SVR_ENABLE, LAPIC_SVR(%esi)

    // Arrival, by this core's index (looked up by its APIC ID).
    mov LAPIC_ID(%esi), %eax
    shr $24, %eax
    movzwl T(ap_index)(,%eax,2), %edi
    cmp $NO_INDEX, %edi
    je ap_park
    movb $1, T(ap_arrived)(%edi)
1:  pause
    cmpb $0, T(ap_release)
    je 1b

    mov $HANDOVER_CR4, %eax
    mov %eax, %cr4
    mov $HANDOVER_CR3, %eax
    mov %eax, %cr3
    mov $MSR_EFER, %ecx
    rdmsr
    or $EFER_LME, %eax
    wrmsr
    mov $HANDOVER_CR0, %eax
    mov %eax, %cr0
    lgdtl T(ap_handover_gdtr)
    ljmp $CODE64, $T(ap_long)

    .code64
ap_long:
    mov $DATA, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    mov T(ap_lapic), %esi
    mov LAPIC_ID(%rsi), %eax
    shr $24, %eax
    mov %eax, %edx
    movzwl T(ap_index)(,%rax,2), %edi
    xor %ecx, %ecx
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
    // The stack last, as the BIOS loader sets it: RFLAGS is what this subtraction leaves.
    mov %rdi, %rbx
    shl $10, %rbx
    xor %esp, %esp
    sub %rbx, %rsp
    jmp *T(ap_entry)

    // A core the loader did not number (it was never sent a start-up IPI): park it.
    .code32
ap_park:
    cli
    hlt
    jmp ap_park

    .balign 8
ap_tramp_gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF            // 0x08: 32-bit code
    .quad 0x00CF92000000FFFF            // 0x10: data
ap_tramp_gdt_end:
ap_tramp_gdtr:
    .word ap_tramp_gdt_end - ap_tramp_gdt - 1
    .long T(ap_tramp_gdt)

    .balign 16
    .globl ap_handover_gdt
ap_handover_gdt:
    .quad 0
    .quad 0x002098000000FFFF            // 0x08: 64-bit code, ring 0
    .quad 0x008092000000FFFF            // 0x10: data
    .quad 0x0000890000000068            // 0x18: a TSS the BIOS loader never loads
    .quad 0
ap_handover_gdt_end:
    .balign 8
    .globl ap_handover_gdtr
ap_handover_gdtr:                       // also loaded by the bootstrap CPU, in 64-bit mode
    .word ap_handover_gdt_end - ap_handover_gdt - 1
    .quad T(ap_handover_gdt)

    // Filled in by the loader (loader/smp.cpp) after the copy.
    .balign 8
    .globl ap_entry, ap_lapic, ap_release, ap_arrived, ap_index
ap_entry:                               // the kernel's entry point
    .quad 0
ap_lapic:                               // the local APIC's physical address (below 4 GiB)
    .long 0
ap_release:                             // set by the bootstrap CPU to let the cores in
    .byte 0
ap_arrived:                             // one byte per core index, set when the core is here
    .fill 256, 1, 0
    .balign 2
ap_index:                               // core index by APIC ID; NO_INDEX for none
    .fill 256, 2, NO_INDEX
    .globl ap_blob_end
ap_blob_end:

    .section .note.GNU-stack, "", @progbits
