#pragma once

// The loader's messages on COM1, every line led by "loader: ", and its way out: a refused
// boot prints why and ends QEMU with status 49 (debug-exit 0x18), never a triple fault.

#include <stdint.h>

namespace loader::console {

void init();

// One line in pieces: begin(), then str()/hex()/dec(), then end().
void begin();
void str(const char* s);
void hex(uint64_t value);
void dec(uint64_t value);
void end();

// A whole line.
void line(const char* s);

// Ends the line begun with begin() and stops the boot.
[[noreturn]] void refuse();

// Prints "loader: <message>" and stops the boot.
[[noreturn]] void fail(const char* message);

} // namespace loader::console
