#include "loader/elf64.hpp"

#include "loader/bytes.hpp"

#include <hal/bootboot.hpp>

namespace loader::elf64 {

namespace {

constexpr size_t kEhdrSize = 64;
constexpr size_t kPhdrSize = 56;
constexpr uint8_t kClass64 = 2;
constexpr uint8_t kDataLsb = 1;
constexpr uint16_t kMachineX86_64 = 62;
constexpr uint32_t kPtLoad = 1;
constexpr uint8_t kTypeDyn = 3; // ET_DYN's low byte

// ELF header fields.
constexpr size_t kEiClass = 4;
constexpr size_t kEiData = 5;
constexpr size_t kEType = 16;
constexpr size_t kEMachine = 18;
constexpr size_t kEEntry = 24;
constexpr size_t kEPhoff = 32;
constexpr size_t kEPhentsize = 54;
constexpr size_t kEPhnum = 56;

// Program header fields.
constexpr size_t kPType = 0;
constexpr size_t kPOffset = 8;
constexpr size_t kPVaddr = 16;
constexpr size_t kPFilesz = 32;
constexpr size_t kPMemsz = 40;

constexpr bool in_higher_half(uint64_t vaddr) {
    return (vaddr >> 48) == 0xFFFF;
}

} // namespace

const char* describe(Error e) {
    switch (e) {
    case Error::None:
        return "no error";
    case Error::TooSmall:
        return "sys/core is too small to be an ELF file";
    case Error::NotElf:
        return "sys/core is not an ELF file";
    case Error::NotElf64:
        return "sys/core is not ELF64";
    case Error::NotLittleEndian:
        return "sys/core is not little-endian";
    case Error::NotX86_64:
        return "sys/core is not an x86_64 executable";
    case Error::BadProgramHeaders:
        return "sys/core has missing or truncated program headers";
    case Error::NoKernelSegment:
        return "sys/core has no PT_LOAD segment in the higher half";
    case Error::FileszAboveMemsz:
        return "the kernel segment's file size exceeds its memory size";
    case Error::SegmentTooBig:
        return "the kernel segment (code + data + bss) is not below 0x1BE000 bytes";
    case Error::SegmentTruncated:
        return "the kernel segment runs past the end of sys/core";
    case Error::WrongAddress:
        return "the kernel segment is not linked at 0xffffffffffe02000 (BOOTBOOT level 1)";
    case Error::EntryOutsideSegment:
        return "the kernel entry point is outside the kernel segment";
    }
    return "unknown error";
}

Error find_kernel_segment(const uint8_t* image, size_t size, KernelSegment* out) {
    if (size < kEhdrSize) {
        return Error::TooSmall;
    }
    if (image[0] != 0x7F || image[1] != 'E' || image[2] != 'L' || image[3] != 'F') {
        return Error::NotElf;
    }
    if (image[kEiClass] != kClass64) {
        return Error::NotElf64;
    }
    if (image[kEiData] != kDataLsb) {
        return Error::NotLittleEndian;
    }
    if (load_le16(image + kEMachine) != kMachineX86_64) {
        return Error::NotX86_64;
    }
    uint64_t phoff = load_le64(image + kEPhoff);
    uint64_t phentsize = load_le16(image + kEPhentsize);
    uint64_t phnum = load_le16(image + kEPhnum);
    // phnum and phentsize are 16-bit, so their product cannot overflow.
    if (phnum == 0 || phentsize < kPhdrSize || !fits(phoff, phnum * phentsize, size)) {
        return Error::BadProgramHeaders;
    }

    for (uint64_t i = 0; i < phnum; ++i) {
        const uint8_t* ph = image + phoff + i * phentsize;
        uint64_t vaddr = load_le64(ph + kPVaddr);
        if (load_le32(ph + kPType) != kPtLoad || !in_higher_half(vaddr)) {
            continue;
        }
        KernelSegment seg{};
        seg.offset = load_le64(ph + kPOffset);
        seg.filesz = load_le64(ph + kPFilesz);
        seg.memsz = load_le64(ph + kPMemsz);
        seg.vaddr = vaddr;
        seg.entry = load_le64(image + kEEntry);
        if (seg.filesz > seg.memsz) {
            return Error::FileszAboveMemsz;
        }
        if (seg.memsz >= bootboot_abi::kMaxKernelSize) {
            return Error::SegmentTooBig;
        }
        if (!fits(seg.offset, seg.filesz, size)) {
            return Error::SegmentTruncated;
        }
        // NOTE: a level 1 loader maps the segment at the fixed address whatever p_vaddr says,
        // so a kernel linked elsewhere would crash on its first absolute reference. Refuse it.
        if (seg.vaddr != bootboot_abi::kKernelVirt) {
            return Error::WrongAddress;
        }
        if (seg.entry < seg.vaddr || seg.entry - seg.vaddr >= seg.filesz) {
            return Error::EntryOutsideSegment;
        }
        seg.shared_object =
            fits(seg.offset, kEType + 1, size) && image[seg.offset + kEType] == kTypeDyn;
        *out = seg;
        return Error::None;
    }
    return Error::NoKernelSegment;
}

} // namespace loader::elf64
