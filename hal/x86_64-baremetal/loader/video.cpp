// The framebuffer: QEMU's standard VGA set to a 32-bit mode through its Bochs VBE registers.

#include "loader/video.hpp"

#include "cpu/x86.hpp"

namespace loader::video {

namespace {

// PCI configuration mechanism 1.
constexpr uint16_t kPciAddress = 0xCF8;
constexpr uint16_t kPciData = 0xCFC;
constexpr uint32_t kPciEnable = 1u << 31;
constexpr uint32_t kPciIdOffset = 0x00;
constexpr uint32_t kPciCommandOffset = 0x04;
constexpr uint32_t kPciBar0Offset = 0x10;
constexpr uint32_t kPciCommandMemory = 1u << 1;
constexpr uint32_t kBarIo = 1u << 0;
constexpr uint32_t kBarMask = ~0xFu;
// QEMU's standard VGA ("-vga std", the default of pc and q35): vendor 0x1234, device 0x1111.
constexpr uint32_t kStdVgaId = 0x1111'1234;

// The Bochs VBE ("DISPI") registers: an index port and a data port.
constexpr uint16_t kDispiIndex = 0x1CE;
constexpr uint16_t kDispiData = 0x1CF;
constexpr uint16_t kDispiId = 0;
constexpr uint16_t kDispiXres = 1;
constexpr uint16_t kDispiYres = 2;
constexpr uint16_t kDispiBpp = 3;
constexpr uint16_t kDispiEnable = 4;
constexpr uint16_t kDispiVirtWidth = 6;
constexpr uint16_t kDispiVideoMemory64K = 0xA;
constexpr uint16_t kDispiId0 = 0xB0C0;
constexpr uint16_t kDispiEnabled = 0x01;
constexpr uint16_t kDispiGetCaps = 0x02;
constexpr uint16_t kDispiLfbEnabled = 0x40;
constexpr uint32_t kBitsPerPixel = 32;
constexpr uint32_t kBytesPerPixel = kBitsPerPixel / 8;

uint32_t pci_read(uint32_t device, uint32_t offset) {
    x86::outl(kPciAddress, kPciEnable | (device << 11) | offset);
    return x86::inl(kPciData);
}

void dispi_write(uint16_t reg, uint16_t value) {
    x86::outw(kDispiIndex, reg);
    x86::outw(kDispiData, value);
}

uint16_t dispi_read(uint16_t reg) {
    x86::outw(kDispiIndex, reg);
    return x86::inw(kDispiData);
}

// The standard VGA's linear framebuffer (BAR 0) on bus 0, 0 if there is none or it is off.
uint64_t find_std_vga() {
    for (uint32_t device = 0; device < 32; ++device) {
        if (pci_read(device, kPciIdOffset) != kStdVgaId) {
            continue;
        }
        uint32_t bar = pci_read(device, kPciBar0Offset);
        if ((pci_read(device, kPciCommandOffset) & kPciCommandMemory) == 0 || (bar & kBarIo) != 0) {
            return 0;
        }
        return bar & kBarMask;
    }
    return 0;
}

} // namespace

Framebuffer set_mode(uint32_t width, uint32_t height, const char** error) {
    Framebuffer fb{};
    *error = nullptr;
    uint64_t lfb = find_std_vga();
    if (lfb == 0 || dispi_read(kDispiId) < kDispiId0) {
        return fb;
    }
    // The adapter's limits, read with the capabilities bit set.
    dispi_write(kDispiEnable, kDispiGetCaps);
    uint32_t max_x = dispi_read(kDispiXres);
    uint32_t max_y = dispi_read(kDispiYres);
    dispi_write(kDispiEnable, 0);
    uint64_t vram = uint64_t{dispi_read(kDispiVideoMemory64K)} * 64 * 1024;
    if (width > max_x || height > max_y || uint64_t{width} * height * kBytesPerPixel > vram) {
        *error = "the standard VGA cannot show the size screen= asks for";
        return fb;
    }
    dispi_write(kDispiXres, static_cast<uint16_t>(width));
    dispi_write(kDispiYres, static_cast<uint16_t>(height));
    dispi_write(kDispiBpp, kBitsPerPixel);
    // Without the no-clear bit: the framebuffer starts black, as after a VBE mode set.
    dispi_write(kDispiEnable, kDispiEnabled | kDispiLfbEnabled);
    fb.ptr = lfb;
    fb.width = width;
    fb.height = height;
    fb.scanline = uint32_t{dispi_read(kDispiVirtWidth)} * kBytesPerPixel;
    fb.size = fb.scanline * height;
    fb.type = 0; // ARGB: blue in the lowest byte, as the adapter's 32-bit modes
    return fb;
}

} // namespace loader::video
