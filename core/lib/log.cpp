#include <core/lib/decimal.hpp>
#include <core/lib/log.hpp>

#include <core/sync/spinlock.hpp>

#include <hal/serial.hpp>

namespace core {

namespace {
// Whole lines from different CPUs must not interleave on the wire.
SpinLock s_console("console", LockRank::Console);
} // namespace

LogLine::LogLine(const char* subsystem) {
    str(subsystem);
    str(": ");
}

LogLine::~LogLine() {
    end();
}

LogLine& LogLine::chr(char c) {
    // NOTE: one byte is kept for the newline, so an overlong line is cut, never split.
    if (m_len + 1 < kCapacity) {
        m_buf[m_len++] = c;
    }
    return *this;
}

LogLine& LogLine::str(const char* s) {
    while (*s != '\0') {
        chr(*s++);
    }
    return *this;
}

LogLine& LogLine::dec(uint64_t value) {
    char digits[kMaxDecimalDigits];
    size_t n = to_decimal(value, digits);
    for (size_t i = 0; i < n; ++i) {
        chr(digits[i]);
    }
    return *this;
}

LogLine& LogLine::hex(uint64_t value, int digits) {
    static constexpr char kHex[] = "0123456789abcdef";
    str("0x");
    for (int i = digits - 1; i >= 0; --i) {
        chr(kHex[(value >> (4 * i)) & 0xF]);
    }
    return *this;
}

LogLine& LogLine::size(uint64_t bytes) {
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

void LogLine::end() {
    if (m_done) {
        return;
    }
    m_done = true;
    m_buf[m_len++] = '\n';
    auto guard = s_console.lock_irqsave();
    hal::serial_write(m_buf, m_len);
}

} // namespace core
