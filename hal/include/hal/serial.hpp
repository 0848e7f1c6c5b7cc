#pragma once

/// @file
/// The console: COM1.

#include <hal/types.hpp>

namespace hal {

/// Writes `len` bytes to COM1, in order, before returning. Usable from the first instruction
/// of bring-up (no heap, small stack) and from any interrupt state; the caller serialises
/// concurrent writers if lines must not interleave.
void serial_write(const char* data, size_t len);

} // namespace hal
