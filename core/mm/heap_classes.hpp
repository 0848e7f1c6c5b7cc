#pragma once

// The heap's size classes, private to core/mm/heap*.cpp: the object sizes, the pages of a slab
// of each, how many free objects a CPU keeps of each, and the tables the fast paths read. All
// of it is computed and checked at compile time.

#include "heap_layout.hpp"

#include <core/lib/compiler.hpp>
#include <core/mm/heap.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core::mm::heap_detail {

inline constexpr uint32_t kClassSize[kHeapClassCount] = {
    16,  32,  48,  64,  80,  96,  112, 128,  160,  192,  224,  256,
    320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048,
};

// The fewest pages (1, 2, 4 or 8) whose slab wastes at most an eighth.
constexpr uint32_t slab_pages_for(uint32_t size) {
    for (uint32_t p = 1; p < 8; p *= 2) {
        uint32_t bytes = p * static_cast<uint32_t>(kPage);
        if ((bytes % size) * 8 <= bytes) {
            return p;
        }
    }
    return 8;
}

// Per-CPU cache bounds: how many free objects a CPU keeps per class, and how many move at
// once between it and the slabs.
constexpr uint32_t cache_capacity(uint32_t size) {
    return size <= 256 ? 64 : size <= 1024 ? 32 : 16;
}

// What the fast paths need of a class, in one place.
struct ClassInfo {
    uint32_t size;
    uint16_t objects;  // per slab
    uint16_t capacity; // of a per-CPU list
    // ceil(2^32 / size): x / size == (x * reciprocal) >> 32 for every offset in a slab, so
    // that free() needs no division.
    uint64_t reciprocal;
};

struct ClassTables {
    ClassInfo info[kHeapClassCount];
    uint8_t by_16[Heap::kMaxSmall / 16 + 1]; // class of a size, by (size + 15) / 16
    uint8_t pow2[Heap::kMaxSmall / 16 + 1];  // the same for power-of-two classes only
    uint32_t slab_pages[kHeapClassCount];
    uint32_t objects[kHeapClassCount];
    uint32_t capacity[kHeapClassCount];
};

constexpr ClassTables make_tables() {
    ClassTables t{};
    for (uint32_t n = 0; n <= Heap::kMaxSmall / 16; ++n) {
        uint32_t bytes = n * 16;
        uint8_t c = 0;
        while (kClassSize[c] < bytes) {
            ++c;
        }
        t.by_16[n] = c;
        uint8_t p = c;
        while ((kClassSize[p] & (kClassSize[p] - 1)) != 0) {
            ++p;
        }
        t.pow2[n] = p;
    }
    for (size_t c = 0; c < kHeapClassCount; ++c) {
        t.slab_pages[c] = slab_pages_for(kClassSize[c]);
        t.objects[c] = t.slab_pages[c] * static_cast<uint32_t>(kPage) / kClassSize[c];
        t.capacity[c] = cache_capacity(kClassSize[c]);
        t.info[c].size = kClassSize[c];
        t.info[c].objects = static_cast<uint16_t>(t.objects[c]);
        t.info[c].capacity = static_cast<uint16_t>(t.capacity[c]);
        t.info[c].reciprocal = ((uint64_t{1} << 32) + kClassSize[c] - 1) / kClassSize[c];
    }
    return t;
}

// Checks the reciprocals against division for every offset of every slab, at compile time.
constexpr bool reciprocals_exact(const ClassTables& t) {
    for (size_t c = 0; c < kHeapClassCount; ++c) {
        for (uint64_t x = 0; x <= t.slab_pages[c] * kPage; x += 8) {
            if (((x * t.info[c].reciprocal) >> 32) != x / kClassSize[c]) {
                return false;
            }
        }
    }
    return true;
}

inline constexpr ClassTables kTables = make_tables();
static_assert(kTables.by_16[1] == 0 && kTables.by_16[128] == kHeapClassCount - 1);
static_assert(kTables.objects[0] == 256 && kTables.slab_pages[kHeapClassCount - 1] == 1);
static_assert(reciprocals_exact(kTables));

ALWAYS_INLINE unsigned class_of(size_t bytes) {
    return kTables.by_16[(bytes + 15) >> 4];
}

} // namespace core::mm::heap_detail
