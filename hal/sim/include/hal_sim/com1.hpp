#pragma once

// The fake COM1: collects what the kernel writes, hands it on line by line.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace hal_sim {

class Com1 {
public:
    // Receives each complete line without its newline, and the tag the tagger gave it when
    // its first byte was written (empty without a tagger).
    using Sink = std::function<void(std::string_view tag, std::string_view line)>;
    using Tagger = std::function<std::string()>;

    void set_sink(Sink sink) { m_sink = std::move(sink); }
    void set_tagger(Tagger tagger) { m_tagger = std::move(tagger); }
    void write(const char* data, size_t len);
    // Hands on a last line that has no newline yet (at the end of a run).
    void flush();
    // Everything written so far, byte for byte, untagged.
    const std::string& transcript() const { return m_transcript; }

private:
    Sink m_sink;
    Tagger m_tagger;
    std::string m_line;
    std::string m_tag;
    bool m_line_started = false;
    std::string m_transcript;
};

} // namespace hal_sim
