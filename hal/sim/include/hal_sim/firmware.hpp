#pragma once

// The simulated machine's firmware: a model of the loader that boots the kernel, which writes
// into simulated RAM what that loader writes on a PC - the bootboot and environment pages, the
// initrd, the kernel segment copied out of it, the loader's page tables - at the addresses that
// loader uses, with the memory map it hands over. Three models (docs/boot.md):
//   bootboot-bios  the upstream BIOS loader, bootboot.bin (the default)
//   bootboot-uefi  the upstream UEFI loader, bootboot.efi (a plausible top-down placement)
//   duet           Duet's QEMU loader: the BIOS loader's hand-over, but up to 256 cores

#include <hal/firmware/loader_model.hpp>
#include <hal_sim/error.hpp>
#include <hal_sim/physical_memory.hpp>

#include <core/boot/boot.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hal_sim {

struct MachineConfig;

enum class Firmware { BootbootBios, BootbootUefi, Duet };

inline const char* firmware_name(Firmware f) {
    switch (f) {
    case Firmware::BootbootBios:
        return "bootboot-bios";
    case Firmware::BootbootUefi:
        return "bootboot-uefi";
    case Firmware::Duet:
        return "duet";
    }
    return "unknown";
}

// Every name firmware_by_name() takes, in the order the docs give them.
inline const std::vector<std::string>& firmware_names() {
    static const std::vector<std::string> names = {"bootboot-bios", "bootboot-uefi", "duet"};
    return names;
}

inline std::optional<Firmware> firmware_by_name(std::string_view name) {
    for (Firmware f : {Firmware::BootbootBios, Firmware::BootbootUefi, Firmware::Duet}) {
        if (name == firmware_name(f)) {
            return f;
        }
    }
    return std::nullopt;
}

// What the loaders and hal::boot_image() need of the kernel ELF in the initrd's sys/core.
struct KernelFile {
    uint64_t segment_offset = 0; // the first higher-half PT_LOAD: p_offset ...
    firmware::KernelSegment segment;
    uint64_t entry = 0;
    // The section bounds the kernel maps with W^X (page-aligned, virtual): .text, .rodata, and
    // .data with .bss.
    uint64_t text_start = 0;
    uint64_t text_end = 0;
    uint64_t rodata_start = 0;
    uint64_t rodata_end = 0;
    uint64_t data_start = 0;
    uint64_t data_end = 0;
};

// Reads `elf` as a BOOTBOOT level 1 loader and the kernel's W^X mapping would. Throws
// ConfigError naming what is wrong with it.
KernelFile read_kernel_file(std::span<const uint8_t> elf);

// The kernel the firmware loads when the run names none (`--kernel`): the core runs as host
// code, so what the loader copies is a stand-in ELF of about the size of Duet's kernel (48 KiB
// of text, 8 KiB of read-only data, 8 KiB of data, 1152 KiB of bss), which the kernel maps at
// those sizes. Its bytes are zeros.
const std::vector<uint8_t>& model_kernel_file();

// A machine the model's loader refuses; `entry` is the E820 entry (index in the configured
// map) it is about, or firmware::kNoEntry.
class FirmwareError : public ConfigError {
public:
    FirmwareError(const std::string& message, size_t entry)
        : ConfigError(message), m_entry(entry) {}
    size_t entry() const { return m_entry; }

private:
    size_t m_entry;
};

// A physical range the firmware hands over mapped read-only, which simulated RAM keeps
// read-only: a write to it is reported, naming it.
struct ReadOnlyRange {
    uint64_t base;
    uint64_t end;
    const char* what;
};

// What the firmware did, for the machine and hal::boot_image().
struct BootState {
    Firmware firmware = Firmware::BootbootBios;
    firmware::Handover handover{};
    KernelFile kernel;
    core::BootInfo info{};
    std::vector<ReadOnlyRange> read_only;
};

// Boots `config`'s machine as its firmware model does, into `ram`. Throws FirmwareError when
// the loader would refuse the machine, ConfigError for anything else it cannot build.
BootState run_firmware(const MachineConfig& config, PhysicalMemory& ram);

} // namespace hal_sim
