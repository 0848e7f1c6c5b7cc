// Fuzz target: the two readers of a kernel ELF, Duet's loader's
// (loader::elf64::find_kernel_segment) and the simulated firmware's (hal_sim::read_kernel_file).
// An accepted segment must lie inside the file and satisfy what the loader relies on; the
// simulator's reader either accepts or throws ConfigError, never crashes.

#include "loader/elf64.hpp"

#include <hal_sim/error.hpp>
#include <hal_sim/firmware.hpp>

#include <hal/bootboot.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<uint8_t> image(data, data + size);
    loader::elf64::KernelSegment seg{};
    loader::elf64::Error e = loader::elf64::find_kernel_segment(image.data(), image.size(), &seg);
    (void)loader::elf64::describe(e);
    if (e == loader::elf64::Error::None) {
        bool ok = seg.offset <= size && seg.filesz <= size - seg.offset &&
                  seg.filesz <= seg.memsz && seg.memsz < bootboot_abi::kMaxKernelSize &&
                  seg.entry >= seg.vaddr && seg.entry - seg.vaddr < seg.filesz;
        if (!ok) {
            std::abort();
        }
    }
    try {
        hal_sim::KernelFile k = hal_sim::read_kernel_file(image);
        bool ok = k.segment_offset <= size && k.segment.file_size <= size - k.segment_offset &&
                  k.segment.file_size <= k.segment.mem_size && k.text_start < k.data_end &&
                  k.data_end - k.text_start <= k.segment.mem_size + 4095;
        if (!ok) {
            std::abort();
        }
    } catch (const hal_sim::ConfigError&) {
    }
    return 0;
}
