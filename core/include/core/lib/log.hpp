#pragma once

// Kernel log lines over COM1, built in a small fixed buffer on the caller's stack: no heap and
// no format strings, so it is safe on the 1 KiB bring-up stack. One line is written with one
// hal::serial_write() call.

#include <core/lib/line.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core {

class LogLine {
public:
    // NOTE: 112 bytes keeps the whole object well inside a bring-up frame budget.
    static constexpr size_t kCapacity = 112;

    explicit LogLine(const char* subsystem);
    LogLine(const LogLine&) = delete;
    LogLine& operator=(const LogLine&) = delete;
    // Writes the line, newline included, unless end() already did.
    ~LogLine();

    // What LineBuffer's do (core/lib/line.hpp).
    LogLine& str(const char* s) {
        m_line.str(s);
        return *this;
    }
    LogLine& chr(char c) {
        m_line.chr(c);
        return *this;
    }
    LogLine& dec(uint64_t value) {
        m_line.dec(value);
        return *this;
    }
    LogLine& hex(uint64_t value, int digits = 16) {
        m_line.hex(value, digits);
        return *this;
    }
    LogLine& size(uint64_t bytes) {
        m_line.size(bytes);
        return *this;
    }
    void end();

private:
    char m_buf[kCapacity];
    LineBuffer m_line{m_buf, kCapacity};
    bool m_done = false;
};

} // namespace core
