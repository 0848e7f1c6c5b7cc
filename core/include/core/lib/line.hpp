#pragma once

// A line of text built in a buffer its owner provides: no heap, no format strings, no locks.
// Log lines, invariant reports, lock-order reports and the bare-metal exception reports all
// build their text with it, on whatever stack they run on (the 1 KiB bring-up stack included).
// One byte is always kept spare for the newline or terminator the owner ends the text with, so
// an overlong line is cut, never split or overrun.

#include <stddef.h>
#include <stdint.h>

namespace core {

class LineBuffer {
public:
    constexpr LineBuffer(char* buffer, uint32_t capacity) : m_buf(buffer), m_capacity(capacity) {}
    LineBuffer(const LineBuffer&) = delete;
    LineBuffer& operator=(const LineBuffer&) = delete;

    LineBuffer& chr(char c) {
        if (m_len + 1 < m_capacity) {
            m_buf[m_len++] = c;
        }
        return *this;
    }
    LineBuffer& str(const char* s) {
        while (*s != '\0') {
            chr(*s++);
        }
        return *this;
    }
    LineBuffer& dec(uint64_t value);
    // "0x" followed by exactly `digits` hex digits (leading zeros kept); with `digits` 0, by as
    // many as the value needs (at least one).
    LineBuffer& hex(uint64_t value, int digits);
    // A byte count in the largest unit that divides it: "639 KiB", "2 GiB", "17 B".
    LineBuffer& size(uint64_t bytes);

    // Puts `c` (a newline, a terminator) in the byte kept spare, after the text.
    void terminate(char c) { m_buf[m_len] = c; }
    const char* text() const { return m_buf; }
    size_t length() const { return m_len; }

private:
    char* m_buf;
    uint32_t m_capacity;
    uint32_t m_len = 0;
};

} // namespace core
