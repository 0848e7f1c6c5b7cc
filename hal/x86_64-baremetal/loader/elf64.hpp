#pragma once

// Picking the kernel segment out of an ELF64 image the way a BOOTBOOT level 1 loader does:
// the first PT_LOAD whose address has 0xFFFF in its top 16 bits, and nothing else.
// Pure: reads only the buffer it is given, bounds-checked against its size.

#include <stddef.h>
#include <stdint.h>

namespace loader::elf64 {

enum class Error {
    None,
    TooSmall,            // shorter than an ELF header
    NotElf,              // no \x7fELF magic
    NotElf64,            // not ELFCLASS64
    NotLittleEndian,     // not ELFDATA2LSB
    NotX86_64,           // e_machine is not EM_X86_64
    BadProgramHeaders,   // none, too small an entry size, or outside the file
    NoKernelSegment,     // no PT_LOAD in the higher half
    FileszAboveMemsz,    // p_filesz > p_memsz
    SegmentTooBig,       // p_memsz (code + data + bss) not below bootboot_abi::kMaxKernelSize
    SegmentTruncated,    // p_offset + p_filesz runs past the end of the file
    WrongAddress,        // not linked at bootboot_abi::kKernelVirt
    EntryOutsideSegment, // e_entry is not inside the segment's file-backed part
};

const char* describe(Error e);

struct KernelSegment {
    uint64_t offset; // p_offset: where the segment's bytes start in the file
    uint64_t filesz; // bytes copied from the file
    uint64_t memsz;  // bytes mapped; the rest after filesz is zeroed
    uint64_t vaddr;
    uint64_t entry;
    // Whether the BIOS loader takes the segment for a shared object's and copies 16 KiB more of
    // the file (to keep its symbols): it tests the byte 16 bytes into the segment's file bytes
    // for ET_DYN (3), which is the ELF header's e_type only when the segment starts at offset 0.
    bool shared_object;
};

Error find_kernel_segment(const uint8_t* image, size_t size, KernelSegment* out);

} // namespace loader::elf64
