#include <hal_sim/com1.hpp>

namespace hal_sim {

void Com1::write(const char* data, size_t len) {
    m_transcript.append(data, len);
    for (size_t i = 0; i < len; ++i) {
        if (data[i] == '\n') {
            if (m_sink) {
                m_sink(m_line);
            }
            m_line.clear();
        } else {
            m_line.push_back(data[i]);
        }
    }
}

void Com1::flush() {
    if (!m_line.empty()) {
        if (m_sink) {
            m_sink(m_line);
        }
        m_line.clear();
    }
}

namespace {
std::string* s_capture = nullptr;
}

SerialCapture::SerialCapture(std::string& target) : m_previous(s_capture) {
    s_capture = &target;
}

SerialCapture::~SerialCapture() {
    s_capture = m_previous;
}

std::string* SerialCapture::active() {
    return s_capture;
}

} // namespace hal_sim
