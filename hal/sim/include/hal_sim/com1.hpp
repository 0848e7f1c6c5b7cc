#pragma once

// The fake COM1: collects what the kernel writes, hands it on line by line.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace hal_sim {

class Com1 {
public:
    // Receives each complete line, without its newline.
    using Sink = std::function<void(std::string_view line)>;

    void set_sink(Sink sink) { m_sink = std::move(sink); }
    void write(const char* data, size_t len);
    // Hands on a last line that has no newline yet (at the end of a run).
    void flush();
    // Everything written so far, byte for byte.
    const std::string& transcript() const { return m_transcript; }

private:
    Sink m_sink;
    std::string m_line;
    std::string m_transcript;
};

// While one of these lives, hal::serial_write() outside a running machine appends to
// `target` instead of going to stderr. For tests of code that logs.
class SerialCapture {
public:
    explicit SerialCapture(std::string& target);
    SerialCapture(const SerialCapture&) = delete;
    SerialCapture& operator=(const SerialCapture&) = delete;
    ~SerialCapture();

    static std::string* active();

private:
    std::string* m_previous;
};

} // namespace hal_sim
