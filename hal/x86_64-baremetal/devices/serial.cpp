// The console: COM1, polled. uart16550::init() runs in duet_kernel_entry before anything logs.

#include "devices/uart16550.hpp"

#include <hal/serial.hpp>

namespace hal {

void serial_write(const char* data, size_t len) {
    uart16550::write(data, len);
}

} // namespace hal
