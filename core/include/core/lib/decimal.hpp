#pragma once

// Decimal digits of an integer, without a library: for log lines and reports that cannot
// take locks.

#include <stddef.h>
#include <stdint.h>

namespace core {

inline constexpr size_t kMaxDecimalDigits = 20; // 2^64 - 1

// Writes `value` in decimal to `out` (no terminator) and returns how many digits it wrote.
inline size_t to_decimal(uint64_t value, char (&out)[kMaxDecimalDigits]) {
    char reversed[kMaxDecimalDigits];
    size_t n = 0;
    do {
        reversed[n++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value != 0);
    for (size_t i = 0; i < n; ++i) {
        out[i] = reversed[n - 1 - i];
    }
    return n;
}

} // namespace core
