// The user program reader (core/user/elf.cpp): a well-formed static executable is described
// exactly, and each field it checks, broken on its own, is refused with its own error.

#include <core/user/elf.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace {

using core::elf::Error;
using core::elf::Image;

struct Phdr {
    uint32_t type;
    uint32_t flags;
    uint64_t offset;
    uint64_t vaddr;
    uint64_t filesz;
    uint64_t memsz;
};

void put16(std::vector<uint8_t>& f, size_t at, uint16_t v) {
    std::memcpy(f.data() + at, &v, sizeof v);
}
void put32(std::vector<uint8_t>& f, size_t at, uint32_t v) {
    std::memcpy(f.data() + at, &v, sizeof v);
}
void put64(std::vector<uint8_t>& f, size_t at, uint64_t v) {
    std::memcpy(f.data() + at, &v, sizeof v);
}

constexpr size_t kPhoff = 64;
constexpr size_t kPhdrSize = 56;

// Text at 0x400000 (R X, file offset 0x1000), read-only data at 0x401000, data and bss at
// 0x402000 (R W, 0x100 bytes in the file, 0x2000 in memory): what user/runtime/link.ld makes.
std::vector<uint8_t> program(std::vector<Phdr> phdrs = {}) {
    if (phdrs.empty()) {
        phdrs = {{1, 5, 0x1000, 0x400000, 0x80, 0x80},
                 {1, 4, 0x2000, 0x401000, 0x40, 0x40},
                 {0x6474e551, 6, 0, 0, 0, 0}, // PT_GNU_STACK: ignored
                 {1, 6, 0x3000, 0x402000, 0x100, 0x2000}};
    }
    std::vector<uint8_t> f(0x3100, 0);
    const uint8_t ident[] = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0};
    std::memcpy(f.data(), ident, sizeof ident);
    put16(f, 16, 2);  // ET_EXEC
    put16(f, 18, 62); // EM_X86_64
    put32(f, 20, 1);
    put64(f, 24, 0x400010); // entry
    put64(f, 32, kPhoff);
    put16(f, 52, 64);
    put16(f, 54, kPhdrSize);
    put16(f, 56, static_cast<uint16_t>(phdrs.size()));
    for (size_t i = 0; i < phdrs.size(); ++i) {
        size_t at = kPhoff + i * kPhdrSize;
        put32(f, at, phdrs[i].type);
        put32(f, at + 4, phdrs[i].flags);
        put64(f, at + 8, phdrs[i].offset);
        put64(f, at + 16, phdrs[i].vaddr);
        put64(f, at + 24, phdrs[i].vaddr);
        put64(f, at + 32, phdrs[i].filesz);
        put64(f, at + 40, phdrs[i].memsz);
        put64(f, at + 48, 0x1000);
    }
    return f;
}

Error parse(const std::vector<uint8_t>& f, Image* image = nullptr) {
    Image local;
    return core::elf::parse(f.data(), f.size(), image != nullptr ? image : &local);
}

TEST(UserElfTest, DescribesAWellFormedProgram) {
    Image image;
    ASSERT_EQ(parse(program(), &image), Error::None);
    EXPECT_EQ(image.entry, 0x400010u);
    ASSERT_EQ(image.count, 3u);
    EXPECT_EQ(image.segments[0].vaddr, 0x400000u);
    EXPECT_EQ(image.segments[0].flags, core::elf::kRead | core::elf::kExecute);
    EXPECT_EQ(image.segments[2].filesz, 0x100u);
    EXPECT_EQ(image.segments[2].memsz, 0x2000u);
    EXPECT_EQ(image.pages, 4u);
}

TEST(UserElfTest, RefusesHeadersThatAreNotAStaticX86_64Executable) {
    EXPECT_EQ(parse(std::vector<uint8_t>(63, 0)), Error::TooSmall);
    Image image;
    EXPECT_EQ(core::elf::parse(nullptr, 0, &image), Error::TooSmall);
    auto f = program();
    f[1] = 'X';
    EXPECT_EQ(parse(f), Error::BadMagic);
    f = program();
    f[4] = 1; // ELFCLASS32
    EXPECT_EQ(parse(f), Error::NotElf64);
    f = program();
    f[5] = 2; // big-endian
    EXPECT_EQ(parse(f), Error::NotElf64);
    f = program();
    f[7] = 9; // FreeBSD
    EXPECT_EQ(parse(f), Error::BadAbi);
    f = program();
    put16(f, 16, 3); // ET_DYN
    EXPECT_EQ(parse(f), Error::NotExecutable);
    f = program();
    put16(f, 18, 3); // EM_386
    EXPECT_EQ(parse(f), Error::WrongMachine);
}

TEST(UserElfTest, RefusesAProgramHeaderTableOutsideTheFile) {
    auto f = program();
    put16(f, 54, 32); // e_phentsize
    EXPECT_EQ(parse(f), Error::BadHeader);
    f = program();
    put16(f, 56, 0); // no program headers
    EXPECT_EQ(parse(f), Error::BadHeader);
    f = program();
    put64(f, 32, f.size() - 100); // runs past the end
    EXPECT_EQ(parse(f), Error::BadHeader);
    f = program();
    put64(f, 32, ~uint64_t{0} - 8); // would wrap
    EXPECT_EQ(parse(f), Error::BadHeader);
    f = program();
    put16(f, 56, 0xffff);
    EXPECT_EQ(parse(f), Error::BadHeader);
}

TEST(UserElfTest, RefusesWhatNeedsADynamicLinkerOrThreadLocalStorage) {
    EXPECT_EQ(parse(program({{1, 5, 0x1000, 0x400000, 0x80, 0x80}, {3, 4, 0x2000, 0, 10, 10}})),
              Error::DynamicProgram);
    EXPECT_EQ(parse(program({{1, 5, 0x1000, 0x400000, 0x80, 0x80}, {2, 6, 0x2000, 0, 10, 10}})),
              Error::DynamicProgram);
    EXPECT_EQ(parse(program({{1, 5, 0x1000, 0x400000, 0x80, 0x80}, {7, 4, 0x2000, 0, 10, 10}})),
              Error::ThreadLocal);
    EXPECT_EQ(parse(program({{0x6474e551, 6, 0, 0, 0, 0}})), Error::NoSegments);
}

TEST(UserElfTest, RefusesSegmentsOutsideTheFileOrTheUserHalf) {
    // File bytes past the end of the file, and filesz > memsz.
    EXPECT_EQ(parse(program({{1, 5, 0x3000, 0x400000, 0x200, 0x200}})), Error::SegmentOutsideFile);
    EXPECT_EQ(parse(program({{1, 5, 0x1000, 0x400000, 0x80, 0x40}})), Error::SegmentOutsideFile);
    EXPECT_EQ(parse(program({{1, 5, ~uint64_t{0} - 0xfff, 0x400000, 0x80, 0x80}})),
              Error::SegmentOutsideFile);
    // Page 0, the kernel half, and a segment that runs over the end of the user half.
    EXPECT_EQ(parse(program({{1, 5, 0x1000, 0, 0x80, 0x80}})), Error::SegmentOutsideUser);
    EXPECT_EQ(parse(program({{1, 5, 0x1000, 0xffff'ffff'ffe0'2000, 0x80, 0x80}})),
              Error::SegmentOutsideUser);
    EXPECT_EQ(parse(program({{1, 5, 0x1000, 0x7fff'ffff'f000, 0x80, 0x2000}})),
              Error::SegmentOutsideUser);
    EXPECT_EQ(parse(program({{1, 5, 0x1000, 0x400000, 0x80, ~uint64_t{0}}})),
              Error::SegmentOutsideUser);
}

TEST(UserElfTest, RefusesSegmentsWithBadRightsAlignmentOrOrder) {
    EXPECT_EQ(parse(program({{1, 7, 0x1000, 0x400000, 0x80, 0x80}})), Error::SegmentWritableCode);
    EXPECT_EQ(parse(program({{1, 1, 0x1000, 0x400000, 0x80, 0x80}})), Error::SegmentUnreadable);
    EXPECT_EQ(parse(program({{1, 5, 0x1010, 0x400000, 0x80, 0x80}})), Error::SegmentMisaligned);
    // Two segments on one page (each page gets one set of rights), and out of order.
    EXPECT_EQ(parse(program(
                  {{1, 5, 0x1000, 0x400000, 0x80, 0x80}, {1, 4, 0x2100, 0x400100, 0x40, 0x40}})),
              Error::SegmentOverlap);
    EXPECT_EQ(parse(program(
                  {{1, 4, 0x2000, 0x401000, 0x40, 0x40}, {1, 5, 0x1000, 0x400000, 0x80, 0x80}})),
              Error::SegmentOverlap);
}

TEST(UserElfTest, RefusesTooManySegmentsOrTooManyPages) {
    std::vector<Phdr> many;
    for (uint64_t i = 0; i <= core::elf::kMaxSegments; ++i) {
        many.push_back({1, 4, 0x2000, 0x401000 + i * 0x1000, 0x10, 0x10});
    }
    many[0] = {1, 5, 0x1000, 0x400000, 0x80, 0x80};
    EXPECT_EQ(parse(program(many)), Error::TooManySegments);
    EXPECT_EQ(parse(program({{1, 5, 0x1000, 0x400000, 0x80, 0x80},
                             {1, 6, 0x2000, 0x401000, 0, core::elf::kMaxImagePages * 4096}})),
              Error::ImageTooLarge);
}

TEST(UserElfTest, RefusesAnEntryPointOutsideTheCode) {
    auto f = program();
    put64(f, 24, 0x401000); // read-only data
    EXPECT_EQ(parse(f), Error::BadEntry);
    f = program();
    put64(f, 24, 0x400080); // just past the code's file bytes
    EXPECT_EQ(parse(f), Error::BadEntry);
    f = program();
    put64(f, 24, 0x40007f); // its last byte
    EXPECT_EQ(parse(f), Error::None);
}

TEST(UserElfTest, EveryTruncationOfAGoodProgramIsRefused) {
    const auto f = program();
    for (size_t n = 0; n < f.size(); ++n) {
        Image image;
        EXPECT_NE(core::elf::parse(f.data(), n, &image), Error::None) << n;
    }
}

TEST(UserElfTest, EveryErrorHasADescription) {
    for (int e = 0; e <= static_cast<int>(Error::BadEntry); ++e) {
        EXPECT_STRNE(core::elf::describe(static_cast<Error>(e)), "unknown error") << e;
    }
}

} // namespace
