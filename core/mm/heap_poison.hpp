#pragma once

// Debug builds' poisoning of freed heap objects, private to core/mm/heap*.cpp. A freed
// object: word 1 holds kFreeTag ^ its address, the bytes after it kPoison. A write after free
// breaks one or the other (found when the object is handed out again); a second free finds
// the tag. Inline: free() poisons on every call.

#ifdef DUET_DEBUG

#include <core/lib/log.hpp>
#include <core/lib/panic.hpp>

#include <stdint.h>

namespace core::mm::heap_detail {

inline constexpr uint64_t kFreeTag = 0xF4EE'0B1E'C7DE'AD00;
inline constexpr uint8_t kPoison = 0xDB;

inline uint64_t free_tag(const void* p) {
    return kFreeTag ^ reinterpret_cast<uintptr_t>(p);
}

inline void poison(void* p, uint32_t size) {
    auto* obj = static_cast<uint64_t*>(p);
    obj[1] = free_tag(p);
    __builtin_memset(static_cast<uint8_t*>(p) + 16, kPoison, size - 16);
}

// Checks the poison of a free object about to be handed out, and clears its tag.
inline void unpoison(void* p, uint32_t size) {
    auto* obj = static_cast<uint64_t*>(p);
    bool intact = obj[1] == free_tag(p);
    const uint8_t* bytes = static_cast<const uint8_t*>(p);
    for (uint32_t i = 16; i < size && intact; ++i) {
        intact = bytes[i] == kPoison;
    }
    if (!intact) [[unlikely]] {
        LogLine("heap")
            .str("use after free: object at ")
            .hex(reinterpret_cast<uintptr_t>(p))
            .str(" (")
            .dec(size)
            .str(" bytes) was written after it was freed");
        panic("heap corrupted");
    }
    obj[1] = 0;
}

} // namespace core::mm::heap_detail

#endif
