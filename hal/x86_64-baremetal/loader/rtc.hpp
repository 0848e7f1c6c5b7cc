#pragma once

// Turning the CMOS real-time clock's registers into BOOTBOOT's datetime bytes.
// Pure: the loader reads the registers, this only converts them.

#include <stdint.h>

namespace loader::rtc {

// Raw register values as read from CMOS, in whatever mode status register B says.
struct Registers {
    uint8_t second;   // 0x00
    uint8_t minute;   // 0x02
    uint8_t hour;     // 0x04; bit 7 is PM in 12-hour mode
    uint8_t day;      // 0x07
    uint8_t month;    // 0x08
    uint8_t year;     // 0x09
    uint8_t century;  // 0x32 (the usual ACPI century register); 0 if absent
    uint8_t status_b; // 0x0B
};

inline constexpr uint8_t kStatusB24Hour = 0x02;
inline constexpr uint8_t kStatusBBinary = 0x04;

// BCD century, year, month, day, hour (24-hour), minute, second, then 0 (no DST flag).
// A missing or nonsensical century is taken to be 20.
void to_bootboot(const Registers& regs, uint8_t out[8]);

} // namespace loader::rtc
