#include <core/lib/decimal.hpp>
#include <core/lib/line.hpp>

namespace core {

LineBuffer& LineBuffer::dec(uint64_t value) {
    char digits[kMaxDecimalDigits];
    size_t n = to_decimal(value, digits);
    for (size_t i = 0; i < n; ++i) {
        chr(digits[i]);
    }
    return *this;
}

LineBuffer& LineBuffer::hex(uint64_t value, int digits) {
    static constexpr char kHex[] = "0123456789abcdef";
    if (digits == 0) {
        digits = 1;
        while (digits < 16 && (value >> (4 * digits)) != 0) {
            ++digits;
        }
    }
    str("0x");
    for (int i = digits - 1; i >= 0; --i) {
        chr(kHex[(value >> (4 * i)) & 0xF]);
    }
    return *this;
}

LineBuffer& LineBuffer::size(uint64_t bytes) {
    static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int unit = 0;
    while (unit < 4 && bytes != 0 && (bytes & 1023) == 0) {
        bytes >>= 10;
        ++unit;
    }
    dec(bytes);
    chr(' ');
    return str(kUnits[unit]);
}

} // namespace core
