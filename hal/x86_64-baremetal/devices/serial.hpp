#pragma once

// The kernel's side of COM1 beyond hal::serial_write().

#include <stddef.h>

namespace x86_serial {

// Writes a report line (an exception, an unexpected interrupt) without the core's console
// lock, which the reporting CPU may hold: it starts a new line first if the last byte written
// was not a newline, so that the report begins at the start of a line.
void write_report(const char* data, size_t len);

} // namespace x86_serial
