#pragma once

// The two 8259 PICs. Duet uses the local APIC only, but the PICs stay wired to LINT0: they are
// remapped away from the exception vectors (where the BIOS left them) and masked, so that
// nothing but their spurious IRQ 7 and 15 can still arrive (x86_vectors::kPicBase + 7, + 15).

#include "cpu/x86.hpp"

#include <stdint.h>

namespace pic {

inline constexpr uint16_t kMasterCommand = 0x20;
inline constexpr uint16_t kMasterData = 0x21;
inline constexpr uint16_t kSlaveCommand = 0xA0;
inline constexpr uint16_t kSlaveData = 0xA1;

inline constexpr uint8_t kIcw1InitWithIcw4 = 0x11;
inline constexpr uint8_t kIcw3SlaveOnIrq2 = 0x04;
inline constexpr uint8_t kIcw3SlaveId = 0x02;
inline constexpr uint8_t kIcw48086 = 0x01;

// A short delay between commands, for old PICs: a write to the unused POST port.
inline void io_wait() {
    x86::outb(0x80, 0);
}

// Remaps the master to vectors base..base+7 and the slave to base+8..base+15, masking all.
inline void remap_and_mask(uint8_t base) {
    x86::outb(kMasterData, 0xFF);
    x86::outb(kSlaveData, 0xFF);
    x86::outb(kMasterCommand, kIcw1InitWithIcw4);
    io_wait();
    x86::outb(kSlaveCommand, kIcw1InitWithIcw4);
    io_wait();
    x86::outb(kMasterData, base);
    io_wait();
    x86::outb(kSlaveData, static_cast<uint8_t>(base + 8));
    io_wait();
    x86::outb(kMasterData, kIcw3SlaveOnIrq2);
    io_wait();
    x86::outb(kSlaveData, kIcw3SlaveId);
    io_wait();
    x86::outb(kMasterData, kIcw48086);
    io_wait();
    x86::outb(kSlaveData, kIcw48086);
    io_wait();
    x86::outb(kMasterData, 0xFF);
    x86::outb(kSlaveData, 0xFF);
}

} // namespace pic
