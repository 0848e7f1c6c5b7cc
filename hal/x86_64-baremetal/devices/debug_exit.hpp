#pragma once

// QEMU's isa-debug-exit device (-device isa-debug-exit,iobase=0xf4,iosize=0x04): writing V to
// the port ends QEMU with exit status (V << 1) | 1. Duet writes 0x10 | verdict so that no
// verdict can be mistaken for QEMU's own statuses 0 and 1.
//
//   kernel: Success 0x10 -> 33, Failure 0x11 -> 35, Panic 0x12 -> 37
//   loader: refused to boot 0x18 -> 49
//
// Without the device the write is ignored and the caller halts instead.

#include "cpu/x86.hpp"

#include <stdint.h>

namespace debug_exit {

inline constexpr uint16_t kPort = 0xF4;
inline constexpr uint8_t kVerdictBase = 0x10;
inline constexpr uint8_t kLoaderError = 0x18;

inline void write(uint8_t value) {
    x86::outb(kPort, value);
}

} // namespace debug_exit
