#pragma once

// The framebuffer the BIOS loader hands over: it sets a VBE mode of 32 bits per pixel, by
// default 1024x768 (`screen=WxH` in the environment asks for another, at least 640x480), and
// reports its linear framebuffer. Duet's loader runs after the BIOS has been left, so it sets
// the same mode on QEMU's standard VGA adapter (PCI 1234:1111) through the adapter's Bochs VBE
// registers, which is what SeaBIOS's VGA BIOS does behind the VBE call. Another adapter, or
// none (-vga none, real hardware), gives no framebuffer (fb_ptr 0), where the real loader
// would stop with "VESA VBE error".

#include <stdint.h>

namespace loader::video {

inline constexpr uint32_t kDefaultWidth = 1024;
inline constexpr uint32_t kDefaultHeight = 768;
inline constexpr uint32_t kMinWidth = 640;
inline constexpr uint32_t kMinHeight = 480;

struct Framebuffer {
    uint64_t ptr; // 0: none
    uint32_t size;
    uint32_t width;
    uint32_t height;
    uint32_t scanline;
    uint8_t type; // bootboot fb_type: 0 ARGB (blue in the lowest byte)
};

// Reads the value of `screen=` as the BIOS loader does: the digits at the start are the width,
// one character is skipped, the digits after it are the height (no digits read as 0); then a
// width below 640 or a height below 480 is raised to it.
constexpr void parse_screen(const char* value, uint32_t* width, uint32_t* height) {
    constexpr uint32_t kLimit = 0xFFFF; // the loader compares 16 bits; this keeps the sum small
    uint32_t n[2] = {0, 0};
    const char* p = value;
    for (int i = 0; i < 2; ++i) {
        for (; *p >= '0' && *p <= '9'; ++p) {
            n[i] = n[i] * 10 + static_cast<uint32_t>(*p - '0');
            n[i] = n[i] > kLimit ? kLimit : n[i];
        }
        if (*p != '\0') {
            ++p;
        }
    }
    *width = n[0] < kMinWidth ? kMinWidth : n[0];
    *height = n[1] < kMinHeight ? kMinHeight : n[1];
}

// Sets QEMU's standard VGA to width x height x 32 with its linear framebuffer. `ptr` is 0 if
// there is no such adapter; `error` is set (and ptr 0) if the adapter cannot show that size.
Framebuffer set_mode(uint32_t width, uint32_t height, const char** error);

} // namespace loader::video
