// The console: COM1, polled. uart16550::init() runs in duet_kernel_entry before anything logs.

#include "devices/serial.hpp"

#include "devices/uart16550.hpp"

#include <hal/serial.hpp>

namespace {
// Whether the last byte on the wire ended a line. Racy between CPUs on purpose: it only decides
// whether a report starts with a newline.
bool s_at_line_start = true;
} // namespace

namespace hal {

void serial_write(const char* data, size_t len) {
    uart16550::write(data, len);
    if (len > 0) {
        __atomic_store_n(&s_at_line_start, data[len - 1] == '\n', __ATOMIC_RELAXED);
    }
}

} // namespace hal

namespace x86_serial {

void write_report(const char* data, size_t len) {
    if (!__atomic_load_n(&s_at_line_start, __ATOMIC_RELAXED)) {
        uart16550::put('\n');
    }
    hal::serial_write(data, len);
}

} // namespace x86_serial
