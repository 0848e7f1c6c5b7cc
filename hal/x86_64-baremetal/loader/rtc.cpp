#include "loader/rtc.hpp"

namespace loader::rtc {

namespace {

constexpr uint8_t kPmBit = 0x80;
constexpr uint8_t kDefaultCentury = 20;

uint8_t bcd_to_binary(uint8_t v) {
    return static_cast<uint8_t>((v >> 4) * 10 + (v & 0xF));
}

uint8_t binary_to_bcd(uint8_t v) {
    v = static_cast<uint8_t>(v % 100);
    return static_cast<uint8_t>(((v / 10) << 4) | (v % 10));
}

} // namespace

void to_bootboot(const Registers& r, uint8_t out[8]) {
    bool binary = (r.status_b & kStatusBBinary) != 0;
    auto value = [binary](uint8_t raw) { return binary ? raw : bcd_to_binary(raw); };

    bool pm = (r.hour & kPmBit) != 0;
    uint8_t hour = value(static_cast<uint8_t>(r.hour & ~kPmBit));
    if ((r.status_b & kStatusB24Hour) == 0) {
        // 12-hour mode: 12 AM is midnight, 12 PM is noon.
        hour = static_cast<uint8_t>(hour % 12 + (pm ? 12 : 0));
    }
    uint8_t century = value(r.century);
    if (century < 19 || century > 99) {
        century = kDefaultCentury;
    }

    out[0] = binary_to_bcd(century);
    out[1] = binary_to_bcd(value(r.year));
    out[2] = binary_to_bcd(value(r.month));
    out[3] = binary_to_bcd(value(r.day));
    out[4] = binary_to_bcd(hour);
    out[5] = binary_to_bcd(value(r.minute));
    out[6] = binary_to_bcd(value(r.second));
    out[7] = 0;
}

} // namespace loader::rtc
