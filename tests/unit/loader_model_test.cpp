// The BOOTBOOT loader models against what the real loaders handed Duet's kernel under QEMU 7.2
// (docs/boot.md): the kernel's `mmap:` lines, turned back into entries here.

#include "test_support.hpp"

#include <hal/firmware/bios_loader.hpp>
#include <hal/firmware/uefi_loader.hpp>

#include <gtest/gtest.h>

#include <vector>

namespace {

using bootboot_abi::MmapEntry;
using bootboot_abi::MmapType;
using firmware::E820Entry;
using firmware::Handover;
using firmware::LoaderError;
using firmware::LoaderInput;
using firmware::LoaderStatus;

// The measured boots: initrd.tar of 245,760 bytes holding a kernel whose segment has 0x3a061
// bytes in the file and 0x119921 in memory.
LoaderInput measured_input(uint32_t cores, uint64_t acpi_root = 0) {
    return LoaderInput{cores, 245760, {0x3a061, 0x119921, false}, acpi_root};
}

struct Built {
    LoaderStatus status;
    Handover handover;
    std::vector<MmapEntry> entries;
};

template <typename Build>
Built run(Build build, const std::vector<E820Entry>& map, const LoaderInput& in) {
    Built b{};
    b.entries.resize(bootboot_abi::kMaxMmapEntries);
    firmware::MmapOut out{b.entries.data(), b.entries.size(), 0};
    b.status = build(map.data(), map.size(), in, &b.handover, out);
    b.entries.resize(b.status.ok() ? out.count : 0);
    return b;
}

Built bios(const std::vector<E820Entry>& map, const LoaderInput& in) {
    return run(firmware::bios::build, map, in);
}

Built uefi(const std::vector<E820Entry>& map, const LoaderInput& in) {
    return run(firmware::uefi::build, map, in);
}

// An entry as the kernel prints it: [first, last] inclusive, as in the `mmap:` lines.
MmapEntry printed(uint64_t first, uint64_t last, MmapType type) {
    return MmapEntry::make(first, last + 1 - first, type);
}

// Compares what the kernel would print (length without the type bits, and the type).
void expect_map(const std::vector<MmapEntry>& got, const std::vector<MmapEntry>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].base(), want[i].base()) << "entry " << i;
        EXPECT_EQ(got[i].length(), want[i].length()) << "entry " << i;
        EXPECT_EQ(got[i].type(), want[i].type()) << "entry " << i;
    }
}

constexpr auto kFree = MmapType::Free;
constexpr auto kUsed = MmapType::Used;
constexpr auto kAcpi = MmapType::Acpi;

TEST(BiosLoaderModel, Q35TwoGigabytesOneCpuIsWhatTheRealLoaderHandedOver) {
    // qemu-system-x86_64 -machine q35 -m 2G -smp 1, bootboot.bin from a disk image.
    Built b = bios(duet::test::fixture("qemu-q35-2g"), measured_input(1, 0x7ffe22e1));
    ASSERT_TRUE(b.status.ok()) << firmware::describe(b.status.error);
    expect_map(b.entries, {
                              printed(0x15000, 0x9fbff, kFree),
                              printed(0x9fc00, 0x9ffff, kUsed),
                              printed(0xf0000, 0xfffff, kUsed),
                              printed(0x256000, 0x7ffdefff, kFree),
                              // Not retyped: the signed compare sees its end, 2^31, as negative.
                              printed(0x7ffdf000, 0x7fffffff, kUsed),
                              printed(0xb0000000, 0xbfffffff, kUsed),
                              printed(0xfed1c000, 0xfed1ffff, kUsed),
                              printed(0xfffc0000, 0xffffffff, kUsed),
                              printed(0xfd00000000, 0xffffffffff, kUsed),
                          });
    const Handover& h = b.handover;
    EXPECT_EQ(h.initrd, 0x100000u);
    EXPECT_EQ(h.initrd_size, 0x3c000u);
    EXPECT_EQ(h.kernel, 0x13c000u);
    EXPECT_EQ(h.kernel_size, 0x11a000u);
    EXPECT_EQ(h.bootboot, 0x8000u);
    EXPECT_EQ(h.environment, 0x9000u);
    EXPECT_EQ(h.tables, 0xa000u);
    EXPECT_EQ(h.stacks, 0x14000u);
    EXPECT_EQ(h.stack_pages, 1u);
    EXPECT_EQ(h.protocol, 0x01);
    EXPECT_FALSE(h.kernel_writable);
}

TEST(BiosLoaderModel, OneGigabyteEightCpusRetypesTheAcpiAreaAndTakesTwoStackPages) {
    // -machine q35 -m 1G -smp 8: SeaBIOS's tables now end below 2 GiB, so the loader finds the
    // RSDT's entry and makes it ACPI.
    std::vector<E820Entry> map = {
        {0x0, 0x9fc00, 1, 1},
        {0x9fc00, 0x400, 2, 1},
        {0xf0000, 0x10000, 2, 1},
        {0x100000, 0x3fedf000, 1, 1},
        {0x3ffdf000, 0x21000, 2, 1},
        {0xb0000000, 0x10000000, 2, 1},
        {0xfed1c000, 0x4000, 2, 1},
        {0xfffc0000, 0x40000, 2, 1},
        {0xfd00000000, 0x300000000, 2, 1},
    };
    Built b = bios(map, measured_input(8, 0x3ffe2571));
    ASSERT_TRUE(b.status.ok()) << firmware::describe(b.status.error);
    expect_map(b.entries, {
                              printed(0x16000, 0x9fbff, kFree),
                              printed(0x9fc00, 0x9ffff, kUsed),
                              printed(0xf0000, 0xfffff, kUsed),
                              printed(0x256000, 0x3ffdefff, kFree),
                              printed(0x3ffdf000, 0x3fffffff, kAcpi),
                              printed(0xb0000000, 0xbfffffff, kUsed),
                              printed(0xfed1c000, 0xfed1ffff, kUsed),
                              printed(0xfffc0000, 0xffffffff, kUsed),
                              printed(0xfd00000000, 0xffffffffff, kUsed),
                          });
    EXPECT_EQ(b.handover.stack_pages, 2u);
}

TEST(BiosLoaderModel, EightGigabytesKeepRamAboveFourGigabytesWhole) {
    Built b = bios(duet::test::fixture("qemu-q35-8g"), measured_input(2, 0x7ffe233c));
    ASSERT_TRUE(b.status.ok());
    ASSERT_EQ(b.entries.size(), 10u);
    EXPECT_EQ(b.entries[3].base(), 0x256000u);
    EXPECT_EQ(b.entries[8].base(), 0x100000000u);
    EXPECT_EQ(b.entries[8].length(), 0x180000000u);
    EXPECT_EQ(b.entries[8].type(), kFree);
}

TEST(BiosLoaderModel, PcMapHasNoEcamOrTpmHoles) {
    Built b = bios(duet::test::fixture("qemu-pc-2g"), measured_input(4, 0x7ffe1bef));
    ASSERT_TRUE(b.status.ok());
    expect_map(b.entries, {
                              printed(0x15000, 0x9fbff, kFree),
                              printed(0x9fc00, 0x9ffff, kUsed),
                              printed(0xf0000, 0xfffff, kUsed),
                              printed(0x256000, 0x7ffdffff, kFree),
                              printed(0x7ffe0000, 0x7fffffff, kUsed),
                              printed(0xfffc0000, 0xffffffff, kUsed),
                              printed(0xfd00000000, 0xffffffffff, kUsed),
                          });
}

TEST(BiosLoaderModel, TheInitrdGoesToTheFirstUsableEntryOfEighteenMegabytes) {
    // A BIOS with the ISA memory hole at 15 MiB: the entry below it is too small.
    std::vector<E820Entry> map = {
        {0x0, 0x9fc00, 1, 1},        {0x9fc00, 0x400, 2, 1},     {0xf0000, 0x10000, 2, 1},
        {0x100000, 0xe00000, 1, 1},  {0xf00000, 0x100000, 2, 1}, {0x1000000, 0x7efdf000, 1, 1},
        {0x7ffdf000, 0x21000, 2, 1},
    };
    Built b = bios(map, measured_input(1));
    ASSERT_TRUE(b.status.ok()) << firmware::describe(b.status.error);
    EXPECT_EQ(b.handover.initrd, 0x1000000u);
    EXPECT_EQ(b.handover.kernel, 0x103c000u);
    expect_map(b.entries, {
                              printed(0x15000, 0x9fbff, kFree),
                              printed(0x9fc00, 0x9ffff, kUsed),
                              printed(0xf0000, 0xfffff, kUsed),
                              printed(0x100000, 0xefffff, kFree),
                              printed(0xf00000, 0xffffff, kUsed),
                              printed(0x1156000, 0x7ffdefff, kFree),
                              printed(0x7ffdf000, 0x7fffffff, kUsed),
                          });
}

TEST(BiosLoaderModel, AnEntryStartingBelowTheInitrdIsSplitAroundIt) {
    // The loader's other branch: the first fit comes first in the firmware's order, but an
    // overlapping entry that starts lower comes first in the sorted map, and it is that one
    // the loader cuts (leaving the first fit whole: this is what the loader does).
    std::vector<E820Entry> map = {
        {0x2000000, 0x2000000, 1, 1}, // the first fit: the initrd goes at 32 MiB
        {0x0, 0x9fc00, 1, 1},
        {0x100000, 0x7ff00000, 1, 1}, // overlaps it
    };
    Built b = bios(map, measured_input(1));
    ASSERT_TRUE(b.status.ok());
    EXPECT_EQ(b.handover.initrd, 0x2000000u);
    expect_map(b.entries, {
                              printed(0x15000, 0x9fbff, kFree),
                              printed(0x100000, 0x1ffffff, kFree),
                              printed(0x2156000, 0x7fffffff, kFree),
                              printed(0x2000000, 0x3ffffff, kFree),
                          });
}

TEST(BiosLoaderModel, LengthsLoseTheirLowByteToTheType) {
    std::vector<E820Entry> map = {
        {0x0, 0x9fc00, 1, 1},
        {0x9fc00, 0x3ff, 2, 1}, // 1023 bytes: the loader reports 768
        {0x100000, 0x2000000, 1, 1},
    };
    Built b = bios(map, measured_input(1));
    ASSERT_TRUE(b.status.ok());
    EXPECT_EQ(b.entries[1].length(), 0x300u);
    EXPECT_EQ(b.entries[1].type(), kUsed);
}

TEST(BiosLoaderModel, ExtendedAttributesAreNotRead) {
    std::vector<E820Entry> map = {
        {0x0, 0x9fc00, 1, 1},
        {0xe0000, 0x20000, 2, 0}, // "ignore this entry", which the loader never asks for
        {0x100000, 0x2000000, 1, 1},
    };
    Built b = bios(map, measured_input(1));
    ASSERT_TRUE(b.status.ok());
    ASSERT_EQ(b.entries.size(), 3u);
    EXPECT_EQ(b.entries[1].base(), 0xe0000u);
}

TEST(BiosLoaderModel, AtMost255CoresAreStarted) {
    Built b = bios(duet::test::fixture("qemu-q35-2g"), measured_input(256));
    ASSERT_TRUE(b.status.ok());
    EXPECT_EQ(b.handover.numcores, 255u);
    EXPECT_EQ(b.handover.stack_pages, 64u);
    EXPECT_EQ(b.entries[0].base(), 0x14000u + 64 * 4096);
}

TEST(BiosLoaderModel, MapsOnWhichTheLoaderCannotWorkAreRefusedNamingTheEntry) {
    // 20 MiB of RAM leaves an entry of 18.9 MiB: enough. 19 MiB does not (QEMU -m 19 panics
    // with "Not enough memory").
    auto ram = [](uint64_t mib) {
        return std::vector<E820Entry>{{0x0, 0x9fc00, 1, 1},
                                      {0x100000, (mib << 20) - 0x100000 - 0x21000, 1, 1},
                                      {(mib << 20) - 0x21000, 0x21000, 2, 1}};
    };
    EXPECT_TRUE(bios(ram(20), measured_input(1)).status.ok());
    EXPECT_EQ(bios(ram(19), measured_input(1)).status.error, LoaderError::NoInitrdArea);

    std::vector<E820Entry> short_first = {{0x0, 0x10000, 1, 1}, {0x100000, 0x4000000, 1, 1}};
    LoaderStatus s = bios(short_first, measured_input(1)).status;
    EXPECT_EQ(s.error, LoaderError::FirstAreaTooSmall);
    EXPECT_EQ(s.entry, 0u);

    std::vector<E820Entry> one_area = {{0x0, 0x80000000, 1, 1}};
    s = bios(one_area, measured_input(1)).status;
    EXPECT_EQ(s.error, LoaderError::InitrdAreaTooLow);
    EXPECT_EQ(s.entry, 0u);

    std::vector<E820Entry> high = {{0x0, 0x9fc00, 1, 1}, {0x100000000, 0x40000000, 1, 1}};
    s = bios(high, measured_input(1)).status;
    EXPECT_EQ(s.error, LoaderError::InitrdAreaTooHigh);
    EXPECT_EQ(s.entry, 1u);

    LoaderInput big_kernel = measured_input(1);
    big_kernel.kernel.mem_size = 0x1BE000;
    EXPECT_EQ(bios(ram(64), big_kernel).status.error, LoaderError::KernelTooBig);
    LoaderInput big_initrd = measured_input(1);
    big_initrd.initrd_bytes = (16ull << 20) + 1;
    EXPECT_EQ(bios(ram(64), big_initrd).status.error, LoaderError::InitrdTooBig);
    EXPECT_EQ(bios({}, measured_input(1)).status.error, LoaderError::NoMemoryMap);
    EXPECT_EQ(bios(ram(64), measured_input(0)).status.error, LoaderError::BadCoreCount);
}

TEST(BiosLoaderModel, PageTablesMapTheKernelReadOnlyAndTheStacksWritable) {
    Built b = bios(duet::test::fixture("qemu-q35-2g"), measured_input(5));
    ASSERT_TRUE(b.status.ok());
    std::vector<uint64_t> tables(firmware::bios::kTablePages * 512, 0);
    firmware::bios::write_tables(tables.data(), b.handover, 0xfd000000);
    auto page = [&](size_t p) { return tables.data() + p * 512; };
    using namespace firmware::bios;
    EXPECT_EQ(page(kPml4Page)[0], 0xe003u);
    EXPECT_EQ(page(kPml4Page)[511], 0xb003u);
    EXPECT_EQ(page(kHighPdptPage)[511], 0xc003u);
    EXPECT_EQ(page(kHighPdPage)[511], 0xd003u);
    EXPECT_EQ(page(kHighPdPage)[480], 0xfd000083u);
    EXPECT_EQ(page(kHighPdPage)[503], 0xffe00083u);
    EXPECT_EQ(page(kHighPdPage)[504], 0x83u); // 32-bit sums, as the loader's: wrapped to 0
    EXPECT_EQ(page(kHighPdPage)[510], 0xc00083u);
    const uint64_t* pt = page(kHighPtPage);
    EXPECT_EQ(pt[0], 0x8001u);
    EXPECT_EQ(pt[1], 0x9001u);
    EXPECT_EQ(pt[2], 0x13c001u);
    // 0x11a pages of kernel and one more, as the loader counts.
    EXPECT_EQ(pt[2 + 0x11a], 0x13c001u + 0x11a * 4096);
    EXPECT_EQ(pt[3 + 0x11a], 0u);
    EXPECT_EQ(pt[511], 0x14003u);
    EXPECT_EQ(pt[510], 0x15003u);
    EXPECT_EQ(pt[509], 0u);
    EXPECT_EQ(page(kLowPdptPage)[3], 0x12003u);
    EXPECT_EQ(page(kLowPdPage)[0], 0x13003u);
    EXPECT_EQ(page(kLowPdPage)[1], 0x200083u);
    EXPECT_EQ(page(kLowPdPage + 3)[511], 0xffe00083u);
    EXPECT_EQ(page(kLowPtPage)[0], 0x3u);
    EXPECT_EQ(page(kLowPtPage)[511], 0x1ff003u);
}

TEST(UefiLoaderModel, AllocatesTopDownBelowFourGigabytesAndConvertsTypes) {
    std::vector<E820Entry> map = duet::test::fixture("qemu-q35-8g");
    map.push_back({0x800000, 0x10000, 4, 1}); // an NVS sliver inside usable RAM
    Built b = uefi(map, measured_input(4));
    ASSERT_TRUE(b.status.ok()) << firmware::describe(b.status.error);
    const Handover& h = b.handover;
    EXPECT_EQ(h.protocol, 0x06);
    EXPECT_TRUE(h.kernel_writable);
    EXPECT_EQ(h.bootboot, 0x7ffdf000u - 4096);
    EXPECT_EQ(h.initrd, h.bootboot - 0x3c000);
    EXPECT_EQ(h.environment, h.initrd - 4096);
    EXPECT_EQ(h.kernel, h.environment - 0x11a000);
    EXPECT_EQ(h.stacks, h.tables + 37 * 4096);
    EXPECT_EQ(h.stacks + h.stack_pages * 4096, h.kernel);
    expect_map(b.entries, {
                              printed(0x0, 0x9efff, kFree), // page 0 and low RAM stay free
                              printed(0x9f000, 0x9ffff, kUsed),
                              printed(0xf0000, 0xfffff, kUsed),
                              printed(0x100000, 0x7fffff, kFree),
                              printed(0x800000, 0x80ffff, kAcpi),
                              printed(0x810000, h.tables - 1, kFree),
                              printed(0x7ffdf000, 0x7fffffff, kUsed),
                              printed(0xb0000000, 0xbfffffff, kUsed),
                              printed(0xfed1c000, 0xfed1ffff, kUsed),
                              printed(0xfffc0000, 0xffffffff, kUsed),
                              printed(0x100000000, 0x27fffffff, kFree),
                              printed(0xfd00000000, 0xffffffffff, kUsed),
                          });
}

TEST(UefiLoaderModel, MergesNeighboursOfOneType) {
    std::vector<E820Entry> map = {
        {0x0, 0x9fc00, 1, 1},      {0x100000, 0x100000, 1, 1}, {0x200000, 0x4000000, 1, 1},
        {0x4200000, 0x1000, 3, 1}, {0x4201000, 0x1000, 4, 1},
    };
    Built b = uefi(map, measured_input(1));
    ASSERT_TRUE(b.status.ok());
    // The two free entries are one, ending where the loader's allocations start; the two
    // ACPI kinds are one.
    ASSERT_EQ(b.entries.size(), 3u);
    EXPECT_EQ(b.entries[1].base(), 0x100000u);
    EXPECT_EQ(b.entries[1].base() + b.entries[1].length(), b.handover.tables);
    EXPECT_EQ(b.entries[2].base(), 0x4200000u);
    EXPECT_EQ(b.entries[2].length(), 0x2000u);
    EXPECT_EQ(b.entries[2].type(), kAcpi);
}

TEST(UefiLoaderModel, NoRoomBelowFourGigabytesIsAnError) {
    std::vector<E820Entry> map = {{0x0, 0x9fc00, 1, 1}, {0x100000000, 0x40000000, 1, 1}};
    EXPECT_EQ(uefi(map, measured_input(1)).status.error, LoaderError::NoInitrdArea);
}

} // namespace
