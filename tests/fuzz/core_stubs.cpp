// What the pure core readers link against in the fuzz build, instead of the HAL: a log line
// that only checks its own bounds, and a panic that aborts (a finding for libFuzzer).

#include <core/lib/log.hpp>
#include <core/lib/panic.hpp>

#include <cstdlib>

namespace core {

LogLine::LogLine(const char* subsystem) {
    str(subsystem).str(": ");
}

LogLine::~LogLine() {
    end();
}

LogLine& LogLine::str(const char* s) {
    while (*s != '\0') {
        chr(*s++);
    }
    return *this;
}

LogLine& LogLine::chr(char c) {
    if (m_len < kCapacity) {
        m_buf[m_len++] = c;
    }
    return *this;
}

LogLine& LogLine::dec(uint64_t value) {
    char digits[20];
    int n = 0;
    do {
        digits[n++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (n > 0) {
        chr(digits[--n]);
    }
    return *this;
}

LogLine& LogLine::hex(uint64_t value, int digits) {
    str("0x");
    for (int i = digits - 1; i >= 0; --i) {
        chr("0123456789abcdef"[(value >> (4 * i)) & 0xF]);
    }
    return *this;
}

LogLine& LogLine::size(uint64_t bytes) {
    return dec(bytes).str(" B");
}

void LogLine::end() {
    m_done = true;
}

void panic(const char* message) {
    (void)message;
    std::abort();
}

void panic_error(const char* what, Error error) {
    (void)what;
    (void)error;
    std::abort();
}

void assertion_failed(const char* expr, const char* file, int line) {
    (void)expr;
    (void)file;
    (void)line;
    std::abort();
}

} // namespace core
