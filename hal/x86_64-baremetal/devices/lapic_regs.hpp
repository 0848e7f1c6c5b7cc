#pragma once

// The xAPIC's memory-mapped registers and the interrupt command register's encoding, shared by
// the loader (INIT-SIPI-SIPI) and the kernel (timer, IPIs, EOI). Offsets are from the base in
// IA32_APIC_BASE (0xFEE00000 unless firmware moved it).

#include <stdint.h>

namespace lapic_regs {

inline constexpr uint64_t kDefaultBase = 0xFEE0'0000;
inline constexpr uint64_t kBaseMask = 0x000F'FFFF'FFFF'F000;
inline constexpr uint64_t kApicBaseX2Mode = 1ull << 10;
inline constexpr uint64_t kApicBaseEnable = 1ull << 11;

inline constexpr uint32_t kId = 0x20;
inline constexpr uint32_t kTpr = 0x80;
inline constexpr uint32_t kEoi = 0xB0;
inline constexpr uint32_t kSvr = 0xF0;
inline constexpr uint32_t kIcrLow = 0x300;
inline constexpr uint32_t kIcrHigh = 0x310;
inline constexpr uint32_t kLvtTimer = 0x320;
inline constexpr uint32_t kTimerInitialCount = 0x380;
inline constexpr uint32_t kTimerCurrentCount = 0x390;
inline constexpr uint32_t kTimerDivide = 0x3E0;

inline constexpr uint32_t kSvrEnable = 1u << 8;
inline constexpr uint32_t kLvtMasked = 1u << 16;

// Interrupt command register, low half.
inline constexpr uint32_t kIcrFixed = 0u << 8;
inline constexpr uint32_t kIcrNmi = 4u << 8;
inline constexpr uint32_t kIcrInit = 5u << 8;
inline constexpr uint32_t kIcrStartup = 6u << 8;
inline constexpr uint32_t kIcrPending = 1u << 12; // delivery status: not yet accepted
inline constexpr uint32_t kIcrAssert = 1u << 14;
inline constexpr uint32_t kIcrDestShift = 24; // in the high half: the target's APIC ID

inline volatile uint32_t* reg(uint64_t base, uint32_t offset) {
    return reinterpret_cast<volatile uint32_t*>(base + offset);
}

} // namespace lapic_regs
