// Fuzz target: the core's memory-map normaliser (core::mm::MapNormalizer). The input is a
// list of 24-byte records (base, length, E820 type + extended attributes) fed through
// add_e820, with kernel reservations mixed in; the output must be sorted, disjoint, within
// the physical address limit, and the frame counts must agree with the areas.

#include <core/mm/map_normalizer.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

uint64_t read64(const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace core::mm;
    constexpr size_t kRecord = 24;
    size_t entries = size / kRecord;
    if (entries > 4096) {
        return 0;
    }
    std::vector<MapEvent> events(2 * entries + 1);
    MapNormalizer n(events.data(), events.size());
    for (size_t i = 0; i < entries; ++i) {
        const uint8_t* r = data + i * kRecord;
        uint64_t base = read64(r);
        uint64_t length = read64(r + 8);
        uint32_t type;
        uint32_t ext;
        std::memcpy(&type, r + 16, 4);
        std::memcpy(&ext, r + 20, 4);
        // A record whose type has the top bit set is a kernel reservation instead.
        if (type & 0x8000'0000u) {
            (void)n.reserve(base, length);
        } else {
            firmware::E820Entry e{};
            e.base = base;
            e.length = length;
            e.type = type;
            e.ext_attrs = ext;
            (void)n.add_e820(e);
        }
    }
    // Once with room to spare, once with deliberately small arrays (must fail cleanly).
    for (size_t cap : {2 * entries + 1, entries / 2}) {
        std::vector<MemoryRegion> regions(cap);
        std::vector<FrameArea> areas(cap);
        auto r = n.normalize(regions.data(), regions.size(), areas.data(), areas.size());
        if (!r.ok()) {
            continue;
        }
        const MapSummary& s = r.value();
        check(s.regions <= cap && s.areas <= cap);
        for (size_t i = 0; i < s.regions; ++i) {
            check(regions[i].base < regions[i].end);
            check(regions[i].end <= kPhysicalAddressLimit);
            if (i > 0) {
                check(regions[i - 1].end <= regions[i].base);
                check(regions[i - 1].end < regions[i].base ||
                      regions[i - 1].type != regions[i].type);
            }
        }
        uint64_t frames = 0;
        for (size_t i = 0; i < s.areas; ++i) {
            frames += areas[i].frames();
        }
        check(frames == s.usable_frames);
        check(s.usable_frames <= s.ram_frames);
    }
    return 0;
}
