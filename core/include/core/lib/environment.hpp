#pragma once

// The BOOTBOOT environment page: `key=value` lines, with `#`, `//` and `/* */` comments.
// The last occurrence of a key wins, as the UEFI loader appends overrides.

#include <stddef.h>
#include <stdint.h>

namespace core {

// Finds `key` and copies its value (at most `capacity` - 1 bytes, NUL-terminated) into `out`.
// False if the key is absent.
bool env_get(const char* environment, const char* key, char* out, size_t capacity);

// A duration value such as "250us", "4ms", "1s" or "100ns", in nanoseconds; `fallback` if the
// key is absent or malformed.
uint64_t env_duration(const char* environment, const char* key, uint64_t fallback);

// A plain decimal number; `fallback` if absent or malformed.
uint64_t env_number(const char* environment, const char* key, uint64_t fallback);

} // namespace core
