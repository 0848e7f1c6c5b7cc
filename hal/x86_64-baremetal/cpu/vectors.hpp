#pragma once

// The interrupt vectors the kernel uses. 0-31 are the CPU's exceptions.

#include <stdint.h>

namespace x86_vectors {

inline constexpr uint8_t kExceptionCount = 32;
inline constexpr uint8_t kNmi = 2;
inline constexpr uint8_t kDoubleFault = 8;
inline constexpr uint8_t kPageFault = 14;

// The 8259 PICs, remapped here and masked: only their spurious IRQ 7 and 15 can still arrive.
inline constexpr uint8_t kPicBase = 0x20;
inline constexpr uint8_t kPicSpuriousMaster = kPicBase + 7;
inline constexpr uint8_t kPicSpuriousSlave = kPicBase + 15;

// The local APIC's one-shot timer (hal::timer_arm).
inline constexpr uint8_t kTimer = 0x40;
// hal::send_ipi: one vector per hal::IpiKind, so that no mailbox is needed.
inline constexpr uint8_t kIpiBase = 0x41;
inline constexpr uint8_t kIpiCount = 3;
// The local APIC's spurious vector (low four bits all ones, as older APICs require).
inline constexpr uint8_t kApicSpurious = 0xFF;

} // namespace x86_vectors
