// The pure parts of what Duet's QEMU loader hands over as the upstream BIOS loader does: the
// firmware table scans (loader/bios_tables.hpp), the checks before its copies
// (loader/placement.hpp), the screen= parser (loader/video.hpp) and the ELF reader's
// shared-object test.

#include "loader/bios_tables.hpp"
#include "loader/elf64.hpp"
#include "loader/placement.hpp"
#include "loader/video.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace {

namespace bt = loader::bios_tables;
using loader::placement::Error;
using loader::placement::Range;

// The first MiB of a PC, all zeros unless a test writes to it.
struct LowMemory {
    std::vector<uint8_t> bytes = std::vector<uint8_t>(1 << 20, 0);

    void put(uint64_t pa, const void* data, size_t n) { std::memcpy(&bytes[pa], data, n); }
    void put32(uint64_t pa, uint32_t v) { put(pa, &v, 4); }
    uint32_t read32(uint64_t pa) const {
        uint32_t v = 0;
        std::memcpy(&v, &bytes.at(pa), 4);
        return v;
    }
    bt::Found scan(uint32_t ebda_segment) const {
        return bt::scan(ebda_segment, [this](uint64_t pa) { return read32(pa); });
    }
};

// An RSDP's first 20 bytes: signature, a checksum that the loader does not check, revision 0.
void put_rsdp(LowMemory& m, uint64_t pa, uint32_t rsdt) {
    m.put(pa, "RSD PTR ", 8);
    m.put32(pa + 16, rsdt);
}

TEST(LoaderBiosTables, TheFirstRsdpFromTheEbdaWinsUncheckedAndTheRsdtUnlessXsdtBytesAreSet) {
    LowMemory m;
    put_rsdp(m, 0xF5A40, 0x7FFE'23F8);
    bt::Found f = m.scan(0x9FC0);
    EXPECT_EQ(f.rsdp, 0xF5A40u);
    EXPECT_EQ(f.acpi_root, 0x7FFE'23F8u);

    // One in the EBDA comes first.
    put_rsdp(m, 0x9FC20, 0x1234'5000);
    EXPECT_EQ(m.scan(0x9FC0).acpi_root, 0x1234'5000u);
    // With no EBDA the scan starts at 0, past the BIOS data area.
    put_rsdp(m, 0x500, 0x2000'0000);
    EXPECT_EQ(m.scan(0).acpi_root, 0x2000'0000u);
    // An EBDA above 0xE0000 starts the scan at 0xE0000.
    EXPECT_EQ(m.scan(0xF000).acpi_root, 0x7FFE'23F8u);

    // Whatever follows a revision 0 RSDP at +24 is taken for an XSDT address if it is not 0.
    m.put32(0xF5A40 + 24, 0xDEAD'BEEF);
    m.put32(0xF5A40 + 28, 0x1);
    EXPECT_EQ(m.scan(0xE000).acpi_root, 0x1'DEAD'BEEFu);
}

TEST(LoaderBiosTables, VideoMemoryIsSkippedAndNoRsdpIsZero) {
    LowMemory m;
    put_rsdp(m, 0xB8000, 0x1000); // in the VGA window: never looked at
    put_rsdp(m, 0xC0000, 0x2000); // in the video BIOS: never looked at
    bt::Found f = m.scan(0x9FC0);
    EXPECT_EQ(f.rsdp, 0u);
    EXPECT_EQ(f.acpi_root, 0u);
    put_rsdp(m, 0xD0000, 0x3000);
    EXPECT_EQ(m.scan(0x9FC0).acpi_root, 0x3000u);
}

TEST(LoaderBiosTables, SmbiosAndMpKeepTheLoadersStaleHighBits) {
    // SeaBIOS under QEMU: "_SM_" at 0xF5A00, then "_MP_" at 0xF5BA0, which the loader reports
    // as 0xFF5BA0 (measured).
    LowMemory m;
    m.put(0xF5A00, "_SM_", 4);
    m.put(0xF5BA0, "_MP_", 4);
    bt::Found f = m.scan(0x9FC0);
    EXPECT_EQ(f.smbios, 0xF5A00u);
    EXPECT_EQ(f.mp, 0xFF5BA0u);

    // Alone, an anchor is reported where it is; below 0xE0000 it is not looked for.
    LowMemory alone;
    alone.put(0xF5BA0, "_MP_", 4);
    alone.put(0xD0000, "_SM_", 4);
    f = alone.scan(0x9FC0);
    EXPECT_EQ(f.mp, 0xF5BA0u);
    EXPECT_EQ(f.smbios, 0u);
}

firmware::Handover handover(uint64_t initrd, uint64_t initrd_size, uint64_t kernel_size) {
    firmware::Handover h{};
    h.initrd = initrd;
    h.initrd_size = initrd_size;
    h.kernel = initrd + initrd_size;
    h.kernel_size = kernel_size;
    return h;
}

TEST(LoaderPlacement, CopiesMayOverlapTheModuleButNeverTheLoader) {
    const Range loader{0x130'0000, 0x131'3000};
    // QEMU: the module right after the loader, the copies at 1 MiB.
    EXPECT_EQ(loader::placement::check(loader, {0x131'3000, 0x134'F000},
                                       handover(0x10'0000, 0x3C000, 0x11A000)),
              Error::None);
    // A module that overlaps its own destination is what memmove is for.
    EXPECT_EQ(loader::placement::check(loader, {0x11'0000, 0x14'C000},
                                       handover(0x10'0000, 0x3C000, 0x11A000)),
              Error::None);
    // The largest initrd and kernel at 1 MiB end below the loader.
    EXPECT_EQ(loader::placement::check(loader, {0x131'3000, 0x231'3000},
                                       handover(0x10'0000, 16 << 20, 0x1BE000)),
              Error::None);

    EXPECT_EQ(loader::placement::check(loader, {0x12F'F000, 0x130'1000},
                                       handover(0x10'0000, 0x3C000, 0x11A000)),
              Error::ModuleOverlapsLoader);
    // An initrd area that starts at 16 MiB (a BIOS with the ISA hole at 15 MiB) and a large
    // initrd reach the loader.
    EXPECT_EQ(loader::placement::check(loader, {0x131'3000, 0x151'3000},
                                       handover(0x100'0000, 0x40'0000, 0x11A000)),
              Error::CopyOverlapsLoader);
    firmware::Handover bad = handover(0x10'0000, 0x3C000, 0x11A000);
    bad.kernel -= 0x1000;
    EXPECT_EQ(loader::placement::check(loader, {0x131'3000, 0x134'F000}, bad),
              Error::KernelOverlapsInitrd);
    EXPECT_EQ(loader::placement::check({0x50'000, 0x60'000}, {0x131'3000, 0x134'F000},
                                       handover(0x10'0000, 0x3C000, 0x11A000)),
              Error::LowAreaOverlapsLoader);
    EXPECT_STRNE(loader::placement::describe(Error::CopyOverlapsLoader), "unknown error");
}

TEST(LoaderVideo, ScreenIsReadAsTheBiosLoaderReadsIt) {
    uint32_t w = 0;
    uint32_t h = 0;
    loader::video::parse_screen("800x600", &w, &h);
    EXPECT_EQ(w, 800u);
    EXPECT_EQ(h, 600u);
    loader::video::parse_screen("1920*1080 trailing", &w, &h);
    EXPECT_EQ(w, 1920u);
    EXPECT_EQ(h, 1080u);
    loader::video::parse_screen("320x200", &w, &h); // below the minimum
    EXPECT_EQ(w, 640u);
    EXPECT_EQ(h, 480u);
    loader::video::parse_screen("garbage", &w, &h);
    EXPECT_EQ(w, 640u);
    EXPECT_EQ(h, 480u);
    loader::video::parse_screen("1024", &w, &h);
    EXPECT_EQ(w, 1024u);
    EXPECT_EQ(h, 480u);
}

// A minimal ELF64 with one PT_LOAD at the level 1 address, its bytes at `offset`.
std::vector<uint8_t> elf(uint64_t offset, uint8_t byte16_of_segment) {
    std::vector<uint8_t> f(offset + 0x100, 0);
    auto put = [&](size_t at, uint64_t v, int n) {
        for (int i = 0; i < n; ++i) {
            f[at + i] = static_cast<uint8_t>(v >> (8 * i));
        }
    };
    f[0] = 0x7F;
    f[1] = 'E';
    f[2] = 'L';
    f[3] = 'F';
    f[4] = 2;                               // 64-bit
    f[5] = 1;                               // little-endian
    put(16, 2, 2);                          // ET_EXEC
    put(18, 62, 2);                         // x86_64
    put(24, 0xFFFF'FFFF'FFE0'2000, 8);      // e_entry
    put(32, 64, 8);                         // e_phoff
    put(54, 56, 2);                         // e_phentsize
    put(56, 1, 2);                          // e_phnum
    put(64, 1, 4);                          // PT_LOAD
    put(64 + 8, offset, 8);                 // p_offset
    put(64 + 16, 0xFFFF'FFFF'FFE0'2000, 8); // p_vaddr
    put(64 + 32, 0x100, 8);                 // p_filesz
    put(64 + 40, 0x2000, 8);                // p_memsz
    f[offset + 16] = byte16_of_segment;
    return f;
}

TEST(LoaderElf, SharedObjectIsTheByteTheBiosLoaderTests) {
    loader::elf64::KernelSegment seg{};
    auto exec = elf(0x200, 0x48);
    ASSERT_EQ(loader::elf64::find_kernel_segment(exec.data(), exec.size(), &seg),
              loader::elf64::Error::None);
    EXPECT_FALSE(seg.shared_object);
    // Not e_type but the byte 16 bytes into the segment: 3 there makes the loader copy more.
    auto marked = elf(0x200, 3);
    ASSERT_EQ(loader::elf64::find_kernel_segment(marked.data(), marked.size(), &seg),
              loader::elf64::Error::None);
    EXPECT_TRUE(seg.shared_object);
}

} // namespace
