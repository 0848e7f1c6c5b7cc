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

void LogLine::end() {
    if (m_done) {
        return;
    }
    m_done = true;
    m_line.terminate('\n');
    auto guard = s_console.lock_irqsave();
    hal::serial_write(m_buf, m_line.length() + 1);
}

} // namespace core
