#pragma once

// Kernel log lines over COM1, built in a small fixed buffer on the caller's stack: no heap and
// no format strings, so it is safe on the 1 KiB bring-up stack. One line is written with one
// hal::serial_write() call.

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

    LogLine& str(const char* s);
    LogLine& chr(char c);
    LogLine& dec(uint64_t value);
    // "0x" followed by exactly `digits` hex digits (leading zeros kept).
    LogLine& hex(uint64_t value, int digits = 16);
    // A byte count in the largest unit that divides it: "639 KiB", "2 GiB", "17 B".
    LogLine& size(uint64_t bytes);
    void end();

private:
    char m_buf[kCapacity];
    size_t m_len = 0;
    bool m_done = false;
};

} // namespace core
