// The user program reader: every field it uses is checked before it is used (elf.hpp).

#include <core/mm/address_space.hpp>
#include <core/user/elf.hpp>

namespace core::elf {

namespace {

constexpr uint64_t kPage = 4096;

// Header fields (ELF-64 Object File Format, version 1.5).
constexpr size_t kHeaderSize = 64;
constexpr size_t kPhdrSize = 56;
constexpr size_t kMaxPhdrs = 64;
constexpr uint8_t kClass64 = 2;
constexpr uint8_t kLittleEndian = 1;
constexpr uint8_t kVersion = 1;
constexpr uint8_t kAbiSysV = 0;
constexpr uint8_t kAbiGnu = 3;
constexpr uint16_t kTypeExec = 2;
constexpr uint16_t kMachineX86_64 = 62;

constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kPtDynamic = 2;
constexpr uint32_t kPtInterp = 3;
constexpr uint32_t kPtTls = 7;

uint16_t le16(const uint8_t* p) {
    return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

uint32_t le32(const uint8_t* p) {
    return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

uint64_t le64(const uint8_t* p) {
    return uint64_t{le32(p)} | (uint64_t{le32(p + 4)} << 32);
}

Error check_segment(const Segment& s, size_t file_size) {
    if (s.filesz > s.memsz || s.offset > file_size || s.filesz > file_size - s.offset) {
        return Error::SegmentOutsideFile;
    }
    uint64_t user_base = mm::kUserBase.value();
    uint64_t user_end = mm::kUserEnd.value();
    if (s.vaddr < user_base || s.vaddr >= user_end || s.memsz > user_end - s.vaddr) {
        return Error::SegmentOutsideUser;
    }
    if (s.vaddr % kPage != s.offset % kPage) {
        return Error::SegmentMisaligned;
    }
    if ((s.flags & kRead) == 0) {
        return Error::SegmentUnreadable;
    }
    if ((s.flags & kWrite) != 0 && (s.flags & kExecute) != 0) {
        return Error::SegmentWritableCode;
    }
    return Error::None;
}

} // namespace

const char* describe(Error e) {
    switch (e) {
    case Error::None:
        return "no error";
    case Error::TooSmall:
        return "shorter than an ELF header";
    case Error::BadMagic:
        return "not an ELF file";
    case Error::NotElf64:
        return "not a little-endian ELF64 file of version 1";
    case Error::BadAbi:
        return "an OS ABI other than System V";
    case Error::NotExecutable:
        return "not an executable (ET_EXEC)";
    case Error::WrongMachine:
        return "not an x86_64 program";
    case Error::BadHeader:
        return "bad header or program header table";
    case Error::DynamicProgram:
        return "a dynamically linked program";
    case Error::ThreadLocal:
        return "thread-local storage is not supported";
    case Error::TooManySegments:
        return "too many loadable segments";
    case Error::NoSegments:
        return "no loadable segment";
    case Error::SegmentOutsideFile:
        return "a segment's bytes lie outside the file";
    case Error::SegmentOutsideUser:
        return "a segment lies outside user space";
    case Error::SegmentMisaligned:
        return "a segment's address and offset differ modulo the page size";
    case Error::SegmentOverlap:
        return "segments overlap, share a page or are out of order";
    case Error::SegmentWritableCode:
        return "a segment is both writable and executable";
    case Error::SegmentUnreadable:
        return "a segment is not readable";
    case Error::ImageTooLarge:
        return "the program is too large";
    case Error::BadEntry:
        return "the entry point is not in an executable segment";
    }
    return "unknown error";
}

Error parse(const uint8_t* file, size_t size, Image* out) {
    *out = Image{};
    if (file == nullptr || size < kHeaderSize) {
        return Error::TooSmall;
    }
    if (file[0] != 0x7f || file[1] != 'E' || file[2] != 'L' || file[3] != 'F') {
        return Error::BadMagic;
    }
    if (file[4] != kClass64 || file[5] != kLittleEndian || file[6] != kVersion) {
        return Error::NotElf64;
    }
    if (file[7] != kAbiSysV && file[7] != kAbiGnu) {
        return Error::BadAbi;
    }
    if (le16(file + 16) != kTypeExec) {
        return Error::NotExecutable;
    }
    if (le16(file + 18) != kMachineX86_64) {
        return Error::WrongMachine;
    }
    uint64_t entry = le64(file + 24);
    uint64_t phoff = le64(file + 32);
    uint16_t ehsize = le16(file + 52);
    uint16_t phentsize = le16(file + 54);
    uint16_t phnum = le16(file + 56);
    if (le32(file + 20) != kVersion || ehsize != kHeaderSize || phentsize != kPhdrSize ||
        phnum == 0 || phnum > kMaxPhdrs || phoff < kHeaderSize || phoff > size ||
        uint64_t{phnum} * kPhdrSize > size - phoff) {
        return Error::BadHeader;
    }
    uint64_t end_page = 0; // the first page after the previous segment
    for (uint16_t i = 0; i < phnum; ++i) {
        const uint8_t* ph = file + phoff + uint64_t{i} * kPhdrSize;
        uint32_t type = le32(ph);
        if (type == kPtInterp || type == kPtDynamic) {
            return Error::DynamicProgram;
        }
        if (type == kPtTls) {
            return Error::ThreadLocal;
        }
        if (type != kPtLoad) {
            continue;
        }
        Segment s;
        s.flags = le32(ph + 4);
        s.offset = le64(ph + 8);
        s.vaddr = le64(ph + 16);
        s.filesz = le64(ph + 32);
        s.memsz = le64(ph + 40);
        if (s.memsz == 0) {
            continue; // occupies nothing
        }
        if (Error e = check_segment(s, size); e != Error::None) {
            return e;
        }
        uint64_t first = s.vaddr / kPage;
        uint64_t last = (s.vaddr + s.memsz - 1) / kPage; // no overflow: checked above
        if (first < end_page) {
            return Error::SegmentOverlap;
        }
        if (out->count == kMaxSegments) {
            return Error::TooManySegments;
        }
        out->pages += last - first + 1;
        if (out->pages > kMaxImagePages) {
            return Error::ImageTooLarge;
        }
        end_page = last + 1;
        out->segments[out->count++] = s;
    }
    if (out->count == 0) {
        return Error::NoSegments;
    }
    bool entry_ok = false;
    for (size_t i = 0; i < out->count; ++i) {
        const Segment& s = out->segments[i];
        if ((s.flags & kExecute) != 0 && entry >= s.vaddr && entry - s.vaddr < s.filesz) {
            entry_ok = true;
        }
    }
    if (!entry_ok) {
        return Error::BadEntry;
    }
    out->entry = entry;
    return Error::None;
}

} // namespace core::elf
