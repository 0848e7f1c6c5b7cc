// The simulated firmware: the BOOTBOOT loader models of hal/include/hal/firmware/, run on
// simulated RAM. See hal_sim/firmware.hpp and docs/boot.md.

#include <hal_sim/firmware.hpp>
#include <hal_sim/hex.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/ustar_writer.hpp>

#include <hal/firmware/bios_loader.hpp>
#include <hal/firmware/uefi_loader.hpp>

#include <core/lib/ustar.hpp>

#include <algorithm>
#include <cstring>

namespace hal_sim {

namespace {

using firmware::kPage;

// Where the firmware under the loader keeps the ACPI root table (the simulated machine has no
// ACPI tables; the BIOS loader only retypes the memory map entry that holds it). SeaBIOS keeps
// its tables in the reserved entry right above the highest usable RAM below 4 GiB, the RSDT
// about 0x3000 into it (QEMU 7.2: 0x32e1 to 0x3571, with the CPU count); firmware that
// reports ACPI memory keeps them in the first ACPI reclaimable entry.
uint64_t acpi_root(const std::vector<firmware::E820Entry>& map) {
    uint64_t top = 0;
    for (const auto& e : map) {
        if (e.type == firmware::kE820Usable && e.base < firmware::kFourGiB) {
            top = std::max(top, std::min(firmware::e820_end(e), firmware::kFourGiB));
        }
    }
    for (const auto& e : map) {
        if (e.type == firmware::kE820Reserved && e.base == top && e.length > 0x3000) {
            return e.base + 0x3000;
        }
    }
    for (const auto& e : map) {
        if (e.type == firmware::kE820AcpiReclaim && e.length > 0) {
            return e.base;
        }
    }
    return 0;
}

// The framebuffer a loader hands over (no pixels are modelled; the kernel maps it, which takes
// page tables). All three loaders set 1024x768 at 32 bits per pixel under QEMU: the BIOS loader
// through VBE and Duet's through the Bochs VBE registers, with the standard VGA's linear
// framebuffer at 0xfd000000 (q35 and pc), the UEFI loader through GOP, which OVMF puts at
// 0xc0000000 (q35).
struct Framebuffer {
    uint64_t ptr;
    uint32_t width;
    uint32_t height;
};

Framebuffer framebuffer_of(Firmware f) {
    switch (f) {
    case Firmware::BootbootBios:
        return {0xFD00'0000, 1024, 768};
    case Firmware::BootbootUefi:
        return {0xC000'0000, 1024, 768};
    case Firmware::Duet:
        return {0xFD00'0000, 1024, 768};
    }
    return {0, 0, 0};
}

// Copies `n` bytes to `pa` in simulated RAM that nothing has written yet, leaving out the pages
// that would only get zeros: the RAM holds zeros already, and untouched host pages cost nothing.
// NOTE: the stand-in kernel's file is zeros, in the initrd and again as the kernel copy
// (docs/simulator.md).
void copy_to_fresh_ram(PhysicalMemory& ram, uint64_t pa, const uint8_t* src, size_t n) {
    static const uint8_t kZeros[kPage] = {};
    while (n > 0) {
        size_t chunk = std::min<size_t>(n, kPage - pa % kPage);
        if (std::memcmp(src, kZeros, chunk) != 0) {
            std::memcpy(ram.at(pa), src, chunk);
        }
        pa += chunk;
        src += chunk;
        n -= chunk;
    }
}

void need_ram(const PhysicalMemory& ram, Firmware fw, uint64_t base, uint64_t bytes,
              const char* what) {
    if (bytes != 0 && !ram.is_usable(base, bytes)) {
        throw ConfigError(std::string("the ") + firmware_name(fw) + " loader puts " + what +
                          " at [" + hex(base) + ", " + hex(base + bytes) +
                          "), which is not usable RAM in this memory map");
    }
}

} // namespace

BootState run_firmware(const MachineConfig& config, PhysicalMemory& ram) {
    BootState s;
    s.firmware = config.firmware;
    std::vector<uint8_t> fallback;
    const std::vector<uint8_t>* initrd = &config.initrd;
    if (initrd->empty()) {
        // Tests build machines without an initrd: the loader still needs a kernel to copy.
        fallback = make_ustar({{"sys/core", std::span(model_kernel_file())}});
        initrd = &fallback;
    }
    core::ustar::Lookup core_file = core::ustar::find(initrd->data(), initrd->size(), "sys/core");
    if (core_file.error != core::ustar::Error::None) {
        throw ConfigError(std::string("the initrd's sys/core: ") +
                          core::ustar::describe(core_file.error));
    }
    try {
        s.kernel = read_kernel_file(
            std::span<const uint8_t>(initrd->data() + core_file.data_offset, core_file.size));
    } catch (const ConfigError& e) {
        throw ConfigError(std::string("the initrd's sys/core: ") + e.what());
    }

    firmware::LoaderInput in{config.cpus, initrd->size(), s.kernel.segment, 0};
    bootboot_abi::MmapEntry entries[bootboot_abi::kMaxMmapEntries];
    firmware::MmapOut out{entries, bootboot_abi::kMaxMmapEntries, 0};
    firmware::LoaderStatus status;
    switch (config.firmware) {
    case Firmware::BootbootBios:
    case Firmware::Duet:
        in.acpi_root = acpi_root(config.memory);
        status =
            firmware::bios::build(config.memory.data(), config.memory.size(), in, &s.handover, out);
        if (status.ok() && config.firmware == Firmware::Duet) {
            // Duet's loader starts every core the machine has, the real one at most 255.
            s.handover.numcores = config.cpus;
        }
        break;
    case Firmware::BootbootUefi:
        status =
            firmware::uefi::build(config.memory.data(), config.memory.size(), in, &s.handover, out);
        break;
    }
    if (!status.ok()) {
        throw FirmwareError(
            std::string("the ") + firmware_name(config.firmware) +
                " loader cannot boot this machine: " + firmware::describe(status.error),
            status.entry);
    }
    const firmware::Handover& h = s.handover;
    Firmware fw = config.firmware;
    need_ram(ram, fw, h.bootboot, kPage, "the bootboot page");
    need_ram(ram, fw, h.environment, kPage, "the environment page");
    need_ram(ram, fw, h.tables, h.table_pages * kPage, "its page tables");
    need_ram(ram, fw, h.stacks, h.stack_pages * kPage, "the core stacks");
    need_ram(ram, fw, h.initrd, h.initrd_size, "the initrd");
    need_ram(ram, fw, h.kernel, h.kernel_size, "the kernel copy");

    // NOTE: simulated RAM is a fresh anonymous mapping, all zeros: what the loader zeroes (the
    // bss after the copied bytes, the stacks, the rest of the pages) already is.
    copy_to_fresh_ram(ram, h.initrd, initrd->data(), initrd->size());
    copy_to_fresh_ram(ram, h.kernel,
                      initrd->data() + core_file.data_offset + s.kernel.segment_offset,
                      s.kernel.segment.file_size);
    Framebuffer fb = framebuffer_of(fw);
    auto* tables = static_cast<uint64_t*>(ram.at(h.tables));
    if (fw == Firmware::BootbootUefi) {
        firmware::uefi::write_tables(tables, h);
    } else {
        firmware::bios::write_tables(tables, h, fb.ptr);
    }

    auto* info = static_cast<bootboot_abi::Info*>(ram.at(h.bootboot));
    std::memcpy(info->mmap, entries, out.count * sizeof entries[0]);
    auto& hd = info->header;
    std::memcpy(hd.magic, bootboot_abi::kMagic, sizeof hd.magic);
    hd.size = static_cast<uint32_t>(sizeof(bootboot_abi::Header) +
                                    out.count * sizeof(bootboot_abi::MmapEntry));
    hd.protocol = h.protocol;
    hd.numcores = static_cast<uint16_t>(h.numcores);
    hd.bspid = 0;
    std::memcpy(hd.datetime, config.datetime.data(), sizeof hd.datetime);
    hd.initrd_ptr = h.initrd;
    hd.initrd_size = h.initrd_size;
    if (fb.ptr != 0) {
        hd.fb_ptr = fb.ptr;
        hd.fb_type = 0; // ARGB
        hd.fb_width = fb.width;
        hd.fb_height = fb.height;
        hd.fb_scanline = fb.width * 4;
        hd.fb_size = hd.fb_scanline * fb.height;
    }

    auto* env = static_cast<char*>(ram.at(h.environment));
    size_t n = std::min(config.environment.size(), bootboot_abi::kEnvironmentSize - 1);
    std::memcpy(env, config.environment.data(), n);
    env[n] = '\0';

    s.info.bootboot = info;
    s.info.environment = env;
    s.read_only = {
        {h.bootboot, h.bootboot + kPage, "the bootboot page"},
        {h.environment, h.environment + kPage, "the environment page"},
        {h.tables, h.tables + h.table_pages * kPage, "the loader's page tables"},
    };
    if (!h.kernel_writable) {
        s.read_only.push_back({h.kernel, h.kernel + h.kernel_size, "the kernel copy"});
    }
    return s;
}

} // namespace hal_sim
