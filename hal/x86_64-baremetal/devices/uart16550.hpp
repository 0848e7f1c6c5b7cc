#pragma once

// A polled 16550 UART on COM1. Shared by the kernel backend and the QEMU loader: both set the
// port up themselves rather than trust whoever ran before them.

#include "cpu/x86.hpp"

#include <stddef.h>
#include <stdint.h>

namespace uart16550 {

inline constexpr uint16_t kCom1 = 0x3F8;

// Register offsets from the base port.
inline constexpr uint16_t kData = 0;       // THR/RBR, or DLL while LCR.DLAB is set
inline constexpr uint16_t kIntEnable = 1;  // IER, or DLM while LCR.DLAB is set
inline constexpr uint16_t kFifoCtrl = 2;   // FCR (write only)
inline constexpr uint16_t kLineCtrl = 3;   // LCR
inline constexpr uint16_t kModemCtrl = 4;  // MCR
inline constexpr uint16_t kLineStatus = 5; // LSR

inline constexpr uint8_t kLcrDlab = 0x80;
inline constexpr uint8_t kLcr8N1 = 0x03;
inline constexpr uint8_t kFcrEnableAndClear = 0x07; // enable, clear RX and TX FIFOs
inline constexpr uint8_t kMcrDtrRts = 0x03;
inline constexpr uint8_t kLsrThrEmpty = 0x20;     // room for one more byte
inline constexpr uint8_t kLsrTransmitIdle = 0x40; // FIFO and shift register both empty

// 115200 baud from the 1.8432 MHz clock: divisor 1.
inline constexpr uint16_t kDivisor115200 = 1;

// 115200 8N1, FIFOs on and cleared, UART interrupts off (polled only).
inline void init(uint16_t base = kCom1) {
    x86::outb(base + kIntEnable, 0);
    x86::outb(base + kLineCtrl, kLcrDlab);
    x86::outb(base + kData, kDivisor115200 & 0xFF);
    x86::outb(base + kIntEnable, kDivisor115200 >> 8);
    x86::outb(base + kLineCtrl, kLcr8N1);
    x86::outb(base + kFifoCtrl, kFcrEnableAndClear);
    x86::outb(base + kModemCtrl, kMcrDtrRts);
}

// NOTE: an absent UART reads 0xFF, which has every status bit set, so the polls below never
// hang on a machine without COM1.
inline void put(char c, uint16_t base = kCom1) {
    while ((x86::inb(base + kLineStatus) & kLsrThrEmpty) == 0) {
        asm volatile("pause");
    }
    x86::outb(base + kData, static_cast<uint8_t>(c));
}

inline void write(const char* data, size_t len, uint16_t base = kCom1) {
    for (size_t i = 0; i < len; ++i) {
        put(data[i], base);
    }
}

// Waits until the last byte has left the shift register, so nothing is lost when the machine
// stops right after.
inline void drain(uint16_t base = kCom1) {
    while ((x86::inb(base + kLineStatus) & kLsrTransmitIdle) == 0) {
        asm volatile("pause");
    }
}

} // namespace uart16550
