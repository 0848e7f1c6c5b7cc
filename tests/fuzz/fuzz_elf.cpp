// Fuzz target: the loader's ELF reader (loader::elf64::find_kernel_segment). An accepted
// segment must lie inside the file and satisfy what the loader relies on.

#include "loader/elf64.hpp"

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
    return 0;
}
