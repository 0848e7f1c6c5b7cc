// The memory-map normaliser: the QEMU fixtures, nasty maps, kernel reservations, the BOOTBOOT
// input, errors, and random maps against a byte-by-byte reference model.

#include "mm_support.hpp"

#include <hal/firmware/bios_loader.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

namespace {

using core::mm::MemoryType;
using duet::test::GiB;
using duet::test::MiB;
using duet::test::normalize_e820;
using duet::test::Normalized;
using duet::test::TiB;
using firmware::E820Entry;

struct Area {
    uint64_t base;
    uint64_t end;
    bool operator==(const Area&) const = default;
};

std::vector<Area> areas_of(const Normalized& n) {
    std::vector<Area> out;
    for (const auto& a : n.areas) {
        out.push_back({a.base.value(), a.end.value()});
    }
    return out;
}

std::string show(const std::vector<Area>& areas) {
    std::string s;
    char buf[64];
    for (const auto& a : areas) {
        std::snprintf(buf, sizeof buf, "[%#llx, %#llx) ", static_cast<unsigned long long>(a.base),
                      static_cast<unsigned long long>(a.end));
        s += buf;
    }
    return s;
}

TEST(MemoryMap, UsableFramesOfTheQemuFixtures) {
    // The counts scenarios/maps/README.md gives (from QEMU's own maps).
    struct Case {
        const char* name;
        uint64_t frames;
        size_t areas;
    };
    for (const Case& c : {Case{"qemu-q35-2g-kvm", 524158, 2}, Case{"qemu-q35-2g", 524158, 2},
                          Case{"qemu-q35-8g", 2097022, 3}, Case{"qemu-pc-2g", 524159, 2}}) {
        Normalized n = normalize_e820(duet::test::fixture(c.name));
        EXPECT_EQ(n.summary.usable_frames, c.frames) << c.name;
        EXPECT_EQ(n.summary.ram_frames, c.frames) << c.name;
        EXPECT_EQ(n.summary.areas, c.areas) << c.name;
        uint64_t sum = 0;
        for (const auto& a : n.areas) {
            sum += a.frames();
        }
        EXPECT_EQ(sum, c.frames) << c.name;
    }
}

struct NastyCase {
    const char* name;
    std::vector<E820Entry> map;
    std::vector<Area> areas;
};

std::vector<NastyCase> nasty_cases() {
    std::vector<NastyCase> cases;
    cases.push_back({"overlapping usable entries merge",
                     {{0x1000, 0x5000, 1, 1}, {0x3000, 0x5000, 1, 1}},
                     {{0x1000, 0x8000}}});
    cases.push_back({"unsorted entries",
                     {{0x20000, 0x2000, 1, 1}, {0x1000, 0x2000, 1, 1}, {0x10000, 0x1000, 2, 1}},
                     {{0x1000, 0x3000}, {0x20000, 0x22000}}});
    cases.push_back(
        {"unaligned usable entry is aligned inward", {{0x1800, 0x3000, 1, 1}}, {{0x2000, 0x4000}}});
    cases.push_back({"zero-length entries are dropped, also inside usable memory",
                     {{0x0, 0x10000, 1, 1}, {0x5000, 0, 2, 1}, {0x20000, 0, 1, 1}},
                     {{0x0, 0x10000}}});
    cases.push_back({"duplicated entries",
                     {{0x0, 0x10000, 1, 1},
                      {0x0, 0x10000, 1, 1},
                      {0x8000, 0x1000, 2, 1},
                      {0x8000, 0x1000, 2, 1}},
                     {{0x0, 0x8000}, {0x9000, 0x10000}}});
    cases.push_back({"a reserved hole inside usable memory costs its whole pages",
                     {{0x1000, 0x10000, 1, 1}, {0x5800, 0x100, 2, 1}, {0x20000, 0x3800, 1, 1}},
                     {{0x1000, 0x5000}, {0x6000, 0x11000}, {0x20000, 0x23000}}});
    cases.push_back({"a reserved entry straddling a page boundary costs both pages",
                     {{0x0, 0x10000, 1, 1}, {0x4ff0, 0x20, 2, 1}},
                     {{0x0, 0x4000}, {0x6000, 0x10000}}});
    cases.push_back({"bad memory (type 5) is cut out of usable memory",
                     {{0x0, 0x100000, 1, 1}, {0x40000, 0x3000, 5, 1}},
                     {{0x0, 0x40000}, {0x43000, 0x100000}}});
    cases.push_back({"ACPI reclaimable and NVS win over usable",
                     {{0x0, 0x100000, 1, 1}, {0x10000, 0x1000, 3, 1}, {0x30000, 0x1000, 4, 1}},
                     {{0x0, 0x10000}, {0x11000, 0x30000}, {0x31000, 0x100000}}});
    cases.push_back(
        {"unknown types are reserved",
         {{0x0, 0x100000, 1, 1},
          {0x10000, 0x1000, 7, 1},
          {0x30000, 0x1000, 12, 1},
          {0x50000, 0x1000, 0xf0000000u, 1}},
         {{0x0, 0x10000}, {0x11000, 0x30000}, {0x31000, 0x50000}, {0x51000, 0x100000}}});
    cases.push_back({"an entry whose extended attributes say 'ignore' is ignored",
                     {{0x0, 0x100000, 1, 1}, {0x10000, 0x1000, 2, 0}, {0x200000, 0x1000, 1, 2}},
                     {{0x0, 0x100000}}});
    cases.push_back({"usable entries touching at an unaligned address make whole frames",
                     {{0x1000, 0x800, 1, 1}, {0x1800, 0x1800, 1, 1}},
                     {{0x1000, 0x3000}}});
    cases.push_back({"a one-byte gap between usable entries costs a frame",
                     {{0x1000, 0x17ff, 1, 1}, {0x2800, 0x1800, 1, 1}},
                     {{0x1000, 0x2000}, {0x3000, 0x4000}}});
    cases.push_back({"usable memory smaller than a frame is no frame",
                     {{0x1100, 0xe00, 1, 1}, {0x5000, 0xfff, 1, 1}},
                     {}});
    cases.push_back({"usable entry reaching exactly 2^52",
                     {{(uint64_t{1} << 52) - 0x2000, 0x2000, 1, 1}},
                     {{(uint64_t{1} << 52) - 0x2000, uint64_t{1} << 52}}});
    // More entries than a BIOS usually reports, more than 128: 200 usable 12 KiB pieces, each
    // with a reserved 256-byte sliver in its middle page.
    NastyCase many{"more than 128 entries", {}, {}};
    for (uint64_t i = 0; i < 200; ++i) {
        uint64_t base = 0x100000 + i * 0x4000;
        many.map.push_back({base, 0x3000, 1, 1});
        many.map.push_back({base + 0x1400, 0x100, 2, 1});
        many.areas.push_back({base, base + 0x1000});
        many.areas.push_back({base + 0x2000, base + 0x3000});
    }
    // Shuffled, so that sorting matters too.
    std::mt19937_64 rng(7);
    std::shuffle(many.map.begin(), many.map.end(), rng);
    cases.push_back(many);
    return cases;
}

TEST(MemoryMap, NastyMaps) {
    for (const auto& c : nasty_cases()) {
        Normalized n = normalize_e820(c.map);
        EXPECT_EQ(areas_of(n), c.areas) << c.name << ": got " << show(areas_of(n));
        uint64_t frames = 0;
        for (const auto& a : c.areas) {
            frames += (a.end - a.base) / 4096;
        }
        EXPECT_EQ(n.summary.usable_frames, frames) << c.name;
    }
}

TEST(MemoryMap, RegionsAreSortedDisjointAndMaximal) {
    Normalized n = normalize_e820(nasty_cases().back().map);
    for (size_t i = 0; i < n.regions.size(); ++i) {
        EXPECT_LT(n.regions[i].base, n.regions[i].end);
        if (i > 0) {
            EXPECT_LE(n.regions[i - 1].end, n.regions[i].base);
            if (n.regions[i - 1].end == n.regions[i].base) {
                EXPECT_NE(n.regions[i - 1].type, n.regions[i].type);
            }
        }
    }
}

TEST(MemoryMap, TheMostRestrictiveTypeWins) {
    // Every pair of E820 types over the same page: the region takes the stricter one.
    // Usable < ACPI reclaimable < ACPI NVS < reserved < bad.
    const std::vector<std::pair<uint32_t, MemoryType>> order = {
        {1, MemoryType::Usable},  {3, MemoryType::AcpiReclaimable},
        {4, MemoryType::AcpiNvs}, {2, MemoryType::Reserved},
        {5, MemoryType::Bad},
    };
    for (size_t a = 0; a < order.size(); ++a) {
        for (size_t b = 0; b < order.size(); ++b) {
            Normalized n = normalize_e820(
                {{0x1000, 0x1000, order[a].first, 1}, {0x1000, 0x1000, order[b].first, 1}});
            ASSERT_EQ(n.regions.size(), 1u);
            EXPECT_EQ(n.regions[0].type, order[std::max(a, b)].second)
                << "types " << order[a].first << " and " << order[b].first;
        }
    }
    EXPECT_LT(MemoryType::Usable, MemoryType::Kernel);
    EXPECT_LT(MemoryType::Kernel, MemoryType::AcpiReclaimable);
}

TEST(MemoryMap, KernelReservations) {
    auto q35 = duet::test::fixture("qemu-q35-2g");
    // Page 0 is usable RAM on the fixtures: reserving it takes one frame.
    Normalized n = normalize_e820(q35, {{0, 4096}});
    EXPECT_EQ(n.summary.usable_frames, 524157u);
    EXPECT_EQ(n.summary.ram_frames, 524158u);
    EXPECT_EQ(n.summary.reserved_frames(), 1u);
    EXPECT_EQ(n.areas.front().base.value(), 0x1000u);

    // A reservation is widened to whole frames; one in a hole or over ACPI changes nothing.
    Normalized m =
        normalize_e820({{0x0, 0x100000, 1, 1}, {0x200000, 0x1000, 3, 1}}, {{0x5800, 0x100},
                                                                           {0x7ff0, 0x20},
                                                                           {0x150000, 0x10000},
                                                                           {0x200000, 0x1000},
                                                                           {0xfff00, 0x200}});
    EXPECT_EQ(areas_of(m), (std::vector<Area>{{0x0, 0x5000}, {0x6000, 0x7000}, {0x9000, 0xff000}}));
    EXPECT_EQ(m.summary.ram_frames, 256u);
    EXPECT_EQ(m.summary.reserved_frames(), 4u);
    for (const auto& r : m.regions) {
        if (r.base == 0x200000) {
            EXPECT_EQ(r.type, MemoryType::AcpiReclaimable);
        }
    }
    // Reserving what the firmware reserves already costs nothing more.
    Normalized k = normalize_e820(q35, {{0xb0000000, 0x10000000}});
    EXPECT_EQ(k.summary.reserved_frames(), 0u);
}

TEST(MemoryMap, TheBootPathOnTheSimulatedFirmwaresMap) {
    // The BOOTBOOT map the BIOS loader builds for q35-2g, reserved as boot_main reserves it:
    // page 0 and the initrd, both holes already.
    auto e820 = duet::test::fixture("qemu-q35-2g");
    firmware::LoaderInput in{4, 0x3c000, {0x3a061, 0x119921, false}, 0};
    firmware::Handover h{};
    bootboot_abi::MmapEntry mmap[bootboot_abi::kMaxMmapEntries];
    firmware::MmapOut out{mmap, bootboot_abi::kMaxMmapEntries, 0};
    ASSERT_TRUE(firmware::bios::build(e820.data(), e820.size(), in, &h, out).ok());
    std::vector<core::mm::MapEvent> events(2 * (out.count + 2));
    core::mm::MapNormalizer n(events.data(), events.size());
    for (size_t i = 0; i < out.count; ++i) {
        ASSERT_TRUE(n.add_bootboot(mmap[i]).ok());
    }
    ASSERT_TRUE(n.reserve(0, 4096).ok());
    ASSERT_TRUE(n.reserve(h.initrd, h.initrd_size).ok());
    std::vector<core::mm::MemoryRegion> regions(events.size());
    std::vector<core::mm::FrameArea> areas(events.size());
    auto s = n.normalize(regions.data(), regions.size(), areas.data(), areas.size());
    ASSERT_TRUE(s.ok());
    // 524158 usable frames, minus [0, 0x15000) and [1 MiB, 0x256000): the loader's holes,
    // which hold page 0 and the initrd, so reserving them again costs nothing.
    EXPECT_EQ(s.value().usable_frames, 524158u - 0x15 - (0x256 - 0x100));
    EXPECT_EQ(s.value().reserved_frames(), 0u);
    EXPECT_EQ(s.value().areas, 2u);
    EXPECT_EQ(areas[0], (core::mm::FrameArea{hal::PhysAddr(0x15000), hal::PhysAddr(0x9f000)}));
    EXPECT_EQ(areas[1], (core::mm::FrameArea{hal::PhysAddr(0x256000), hal::PhysAddr(0x7ffdf000)}));
}

TEST(MemoryMap, ATerabyteMachine) {
    // QEMU's q35 layout with 1 TiB of RAM: 2 GiB below the PCI hole, 1022 GiB from 4 GiB (to
    // 1026 GiB), and QEMU's reserved HyperTransport window [1012 GiB, 1024 GiB) on top of it.
    auto map = duet::test::q35_map(TiB);
    map.push_back({0xfd00000000, 0x300000000, 2, 1});
    Normalized n = normalize_e820(map);
    uint64_t low = 159 + (2 * GiB - MiB) / 4096;
    uint64_t high = (1012 * GiB - 4 * GiB) / 4096 + (1026 * GiB - 1024 * GiB) / 4096;
    EXPECT_EQ(n.summary.usable_frames, low + high);
    EXPECT_EQ(n.summary.areas, 4u);
    EXPECT_EQ(n.areas[2].end.value(), 1012 * GiB);
    EXPECT_EQ(n.areas[3].base.value(), 1024 * GiB);
    // More RAM touching the last entry extends the last area.
    map.push_back({1026 * GiB, 10 * GiB, 1, 1});
    Normalized m = normalize_e820(map);
    EXPECT_EQ(m.summary.usable_frames, low + high + 10 * GiB / 4096);
    EXPECT_EQ(m.summary.areas, 4u);
}

TEST(MemoryMap, AddressesBeyond52BitsAreAnError) {
    std::vector<core::mm::MapEvent> events(8);
    core::mm::MapNormalizer n(events.data(), events.size());
    EXPECT_EQ(n.add(uint64_t{1} << 52, 0x1000, MemoryType::Usable).error(),
              core::Error::AddressOutOfRange);
    EXPECT_EQ(n.add((uint64_t{1} << 52) - 0x1000, 0x2000, MemoryType::Reserved).error(),
              core::Error::AddressOutOfRange);
    // Wrapping around the 64-bit space is beyond 52 bits too.
    EXPECT_EQ(n.add(0x1000, ~uint64_t{0}, MemoryType::Usable).error(),
              core::Error::AddressOutOfRange);
    EXPECT_EQ(n.add_e820({0xfff0000000000000, 0x1000, 1, 1}).error(),
              core::Error::AddressOutOfRange);
    // A disabled or empty entry is dropped before it is looked at.
    EXPECT_TRUE(n.add_e820({0xfff0000000000000, 0x1000, 1, 0}).ok());
    EXPECT_TRUE(n.add(uint64_t{1} << 60, 0, MemoryType::Usable).ok());
    EXPECT_TRUE(n.add((uint64_t{1} << 52) - 0x1000, 0x1000, MemoryType::Usable).ok());
    EXPECT_EQ(n.events(), 2u);
}

TEST(MemoryMap, OverflowingABufferIsAnError) {
    std::vector<core::mm::MapEvent> events(4);
    core::mm::MapNormalizer n(events.data(), events.size());
    ASSERT_TRUE(n.add(0x0, 0x10000, MemoryType::Usable).ok());
    ASSERT_TRUE(n.add(0x4000, 0x1000, MemoryType::Reserved).ok());
    EXPECT_EQ(n.add(0x8000, 0x1000, MemoryType::Reserved).error(), core::Error::CapacityExceeded);

    std::vector<core::mm::MemoryRegion> regions(3);
    std::vector<core::mm::FrameArea> areas(2);
    auto s = n.normalize(regions.data(), 2, areas.data(), 2);
    EXPECT_EQ(s.error(), core::Error::CapacityExceeded);
    s = n.normalize(regions.data(), 3, areas.data(), 1);
    EXPECT_EQ(s.error(), core::Error::CapacityExceeded);
    s = n.normalize(regions.data(), 3, areas.data(), 2);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s.value().usable_frames, 15u);
}

// --- Random maps against a reference that types every 256-byte unit one by one. ---

TEST(MemoryMap, RandomMapsAgreeWithAByteByByteModel) {
    constexpr uint64_t kUnit = 0x100;
    constexpr uint64_t kUnits = 64 * 16; // 64 frames
    constexpr uint64_t kPerFrame = 4096 / kUnit;
    std::mt19937_64 rng(20260101);
    const uint32_t types[] = {1, 1, 1, 2, 3, 4, 5, 9};
    for (int round = 0; round < 400; ++round) {
        std::vector<E820Entry> map;
        std::vector<duet::test::Range> reservations;
        std::vector<int> fw(kUnits, -1);
        std::vector<bool> kernel(kUnits, false);
        int entries = 1 + static_cast<int>(rng() % 24);
        for (int i = 0; i < entries; ++i) {
            uint64_t base = rng() % kUnits;
            uint64_t len = rng() % (kUnits - base + 1);
            if (rng() % 4 != 0) {
                len = std::min<uint64_t>(len, 1 + rng() % 96);
            }
            bool reservation = rng() % 6 == 0;
            if (reservation) {
                reservations.push_back({base * kUnit, len * kUnit});
                for (uint64_t u = base; u < base + len; ++u) {
                    kernel[u] = true;
                }
                continue;
            }
            uint32_t type = types[rng() % 8];
            uint32_t ext = rng() % 10 == 0 ? 0 : 1;
            map.push_back({base * kUnit, len * kUnit, type, ext});
            if (ext == 0) {
                continue;
            }
            int t = static_cast<int>(core::mm::e820_memory_type(type));
            for (uint64_t u = base; u < base + len; ++u) {
                fw[u] = std::max(fw[u], t);
            }
        }
        // The model: a unit's type, then frames and runs from units.
        std::vector<int> eff(kUnits);
        for (uint64_t u = 0; u < kUnits; ++u) {
            eff[u] = fw[u];
            if (fw[u] == static_cast<int>(MemoryType::Usable) && kernel[u]) {
                eff[u] = static_cast<int>(MemoryType::Kernel);
            }
        }
        std::vector<Area> want_areas;
        uint64_t want_usable = 0;
        uint64_t want_ram = 0;
        for (uint64_t f = 0; f < kUnits / kPerFrame; ++f) {
            bool usable = true;
            bool ram = true;
            for (uint64_t u = f * kPerFrame; u < (f + 1) * kPerFrame; ++u) {
                usable &= eff[u] == static_cast<int>(MemoryType::Usable);
                ram &= eff[u] == static_cast<int>(MemoryType::Usable) ||
                       eff[u] == static_cast<int>(MemoryType::Kernel);
            }
            want_ram += ram;
            if (usable) {
                ++want_usable;
                if (!want_areas.empty() && want_areas.back().end == f * 4096) {
                    want_areas.back().end += 4096;
                } else {
                    want_areas.push_back({f * 4096, (f + 1) * 4096});
                }
            }
        }
        Normalized n = normalize_e820(map, reservations);
        ASSERT_EQ(areas_of(n), want_areas) << "round " << round;
        ASSERT_EQ(n.summary.usable_frames, want_usable) << "round " << round;
        ASSERT_EQ(n.summary.ram_frames, want_ram) << "round " << round;
        // Regions: every unit has the type of the region covering it, or none.
        std::vector<int> got(kUnits, -1);
        for (const auto& r : n.regions) {
            ASSERT_EQ(r.base % kUnit, 0u);
            for (uint64_t u = r.base / kUnit; u < r.end / kUnit; ++u) {
                got[u] = static_cast<int>(r.type);
            }
        }
        ASSERT_EQ(got, eff) << "round " << round;
    }
}

} // namespace
