#include <hal_sim/com1.hpp>

namespace hal_sim {

void Com1::write(const char* data, size_t len) {
    m_transcript.append(data, len);
    for (size_t i = 0; i < len; ++i) {
        if (!m_line_started) {
            m_line_started = true;
            m_tag = m_tagger ? m_tagger() : std::string();
        }
        if (data[i] == '\n') {
            if (m_sink) {
                m_sink(m_tag, m_line);
            }
            m_line.clear();
            m_line_started = false;
        } else {
            m_line.push_back(data[i]);
        }
    }
}

void Com1::flush() {
    if (m_line_started) {
        if (m_sink) {
            m_sink(m_tag, m_line);
        }
        m_line.clear();
        m_line_started = false;
    }
}

} // namespace hal_sim
