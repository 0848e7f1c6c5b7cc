#pragma once

// Channel 2 of the 8254 programmable interval timer, polled. Its gate and output are wired to
// port 0x61 (bit 0 gate, bit 1 speaker, bit 5 output), so it needs no interrupt: the loader
// uses it for the delays of the INIT-SIPI-SIPI sequence, the kernel as the reference it
// calibrates the TSC against. Shared by both, like the UART.

#include "cpu/x86.hpp"

#include <stdint.h>

namespace pit {

inline constexpr uint32_t kFrequencyHz = 1'193'182;

inline constexpr uint16_t kChannel2 = 0x42;
inline constexpr uint16_t kCommand = 0x43;
inline constexpr uint16_t kPortB = 0x61;

inline constexpr uint8_t kGate2 = 0x01;
inline constexpr uint8_t kSpeaker = 0x02;
inline constexpr uint8_t kOut2 = 0x20;
// Channel 2, low then high byte, mode 0 (interrupt on terminal count), binary.
inline constexpr uint8_t kChannel2Mode0 = 0xB0;
inline constexpr uint8_t kLatchChannel2 = 0x80;

// The longest count: 65535 ticks, about 54.9 ms.
inline constexpr uint16_t kMaxCount = 0xFFFF;

// Starts channel 2 counting down from `count`: its output goes high when the count reaches
// zero, and the counter then keeps going down from 0xFFFF.
inline void start_countdown(uint16_t count) {
    uint8_t b = x86::inb(kPortB);
    x86::outb(kPortB, b & ~(kGate2 | kSpeaker)); // gate low: hold the counter
    x86::outb(kCommand, kChannel2Mode0);
    x86::outb(kChannel2, count & 0xFF);
    x86::outb(kChannel2, count >> 8);
    x86::outb(kPortB, (b & ~kSpeaker) | kGate2); // gate high: count
}

inline bool countdown_done() {
    return (x86::inb(kPortB) & kOut2) != 0;
}

// Channel 2's current count, latched so that its two bytes belong together.
inline uint16_t read_count() {
    x86::outb(kCommand, kLatchChannel2);
    uint8_t lo = x86::inb(kChannel2);
    uint8_t hi = x86::inb(kChannel2);
    return static_cast<uint16_t>(lo | (hi << 8));
}

// Busy-waits at least `us` microseconds.
inline void wait_us(uint32_t us) {
    uint64_t ticks = (uint64_t{us} * kFrequencyHz + 999'999) / 1'000'000;
    while (ticks > 0) {
        uint16_t step = ticks > kMaxCount ? kMaxCount : static_cast<uint16_t>(ticks);
        start_countdown(step);
        while (!countdown_done()) {
            asm volatile("pause");
        }
        ticks -= step;
    }
}

} // namespace pit
