#pragma once

// Reading a user program: a static ELF64 x86_64 executable (ET_EXEC) from the initrd. Pure: it
// reads only the bytes it is given and checks every field it uses against them and against the
// user half of an address space, so the host tests can feed it anything. What it accepts:
//
// - the ELF64, little-endian, System V (or GNU) header of an x86_64 ET_EXEC, version 1;
// - 1 to kMaxSegments PT_LOAD segments, each readable, never both writable and executable,
//   with file bytes inside the file, file size <= memory size, vaddr and offset congruent
//   modulo 4 KiB, inside [kUserBase, kUserEnd), in ascending order and on pages of their own
//   (no two segments share a page: each page gets one set of rights);
// - no PT_INTERP, PT_DYNAMIC or PT_TLS (nothing to link, no thread-local storage yet); other
//   program headers (notes, GNU stack and properties) are ignored;
// - an entry point inside an executable segment's file bytes.

#include <stddef.h>
#include <stdint.h>

namespace core::elf {

inline constexpr size_t kMaxSegments = 8;
// At most this many pages of memory for all segments together (4 MiB): a bound on what a bad
// file can make the kernel allocate.
inline constexpr uint64_t kMaxImagePages = 1024;

enum class Error : uint8_t {
    None,
    TooSmall,            // shorter than an ELF header
    BadMagic,            // not an ELF file
    NotElf64,            // 32-bit, big-endian, or another ELF version
    BadAbi,              // an OS ABI other than System V or GNU
    NotExecutable,       // not ET_EXEC (a shared object, a relocatable file, a core dump)
    WrongMachine,        // not x86_64
    BadHeader,           // header or program-header sizes, counts or offsets that do not fit
    DynamicProgram,      // PT_INTERP or PT_DYNAMIC: needs a dynamic linker
    ThreadLocal,         // PT_TLS
    TooManySegments,     // more than kMaxSegments PT_LOAD
    NoSegments,          // no PT_LOAD
    SegmentOutsideFile,  // file bytes past the end of the file, or filesz > memsz
    SegmentOutsideUser,  // not inside the user half (or wraps around)
    SegmentMisaligned,   // vaddr and offset differ modulo the page size
    SegmentOverlap,      // shares a page with another segment, or not in ascending order
    SegmentWritableCode, // both writable and executable
    SegmentUnreadable,   // no read right
    ImageTooLarge,       // more than kMaxImagePages pages
    BadEntry,            // the entry point is not in an executable segment
};

const char* describe(Error e);

// Segment rights (p_flags).
inline constexpr uint32_t kExecute = 1;
inline constexpr uint32_t kWrite = 2;
inline constexpr uint32_t kRead = 4;

struct Segment {
    uint64_t vaddr = 0;  // first byte
    uint64_t memsz = 0;  // bytes in memory; those past filesz are zero
    uint64_t offset = 0; // of the file bytes
    uint64_t filesz = 0;
    uint32_t flags = 0; // kRead, kWrite, kExecute
};

struct Image {
    uint64_t entry = 0;
    size_t count = 0;
    Segment segments[kMaxSegments];
    uint64_t pages = 0; // 4 KiB pages the segments cover
};

// Checks `file` (`size` bytes) and describes it in `out`. None or the first thing found wrong.
Error parse(const uint8_t* file, size_t size, Image* out);

} // namespace core::elf
