#pragma once

// Little-endian loads from byte buffers, for the loader's parsers: no alignment assumptions,
// no type punning.

#include <stddef.h>
#include <stdint.h>

namespace loader {

inline uint16_t load_le16(const uint8_t* p) {
    return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

inline uint32_t load_le32(const uint8_t* p) {
    return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

inline uint64_t load_le64(const uint8_t* p) {
    return uint64_t{load_le32(p)} | (uint64_t{load_le32(p + 4)} << 32);
}

// Whether [offset, offset + length) lies inside a buffer of `size` bytes, without overflow.
inline bool fits(uint64_t offset, uint64_t length, uint64_t size) {
    return offset <= size && length <= size - offset;
}

} // namespace loader
