// Fuzz target: the kernel's reader of user programs (core::elf::parse). What it accepts must be
// what it promises (core/include/core/user/elf.hpp): segments inside the file and the user half,
// in order on pages of their own, never writable and executable, the entry in executable bytes.

#include <core/user/elf.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // An exactly sized copy, so that AddressSanitizer sees any read past the end.
    std::vector<uint8_t> file(data, data + size);
    core::elf::Image image;
    core::elf::Error e = core::elf::parse(file.data(), file.size(), &image);
    (void)core::elf::describe(e);
    if (e != core::elf::Error::None) {
        return 0;
    }
    constexpr uint64_t kUserBase = 0x1000;
    constexpr uint64_t kUserEnd = 0x0000'8000'0000'0000;
    uint64_t next_page = 0;
    bool entry_ok = false;
    if (image.count == 0 || image.count > core::elf::kMaxSegments ||
        image.pages > core::elf::kMaxImagePages) {
        std::abort();
    }
    for (size_t i = 0; i < image.count; ++i) {
        const core::elf::Segment& s = image.segments[i];
        bool writable = (s.flags & core::elf::kWrite) != 0;
        bool executable = (s.flags & core::elf::kExecute) != 0;
        if (s.memsz == 0 || s.filesz > s.memsz || s.offset > size || s.filesz > size - s.offset ||
            s.vaddr < kUserBase || s.vaddr >= kUserEnd || s.memsz > kUserEnd - s.vaddr ||
            s.vaddr / 4096 < next_page || (writable && executable) ||
            (s.flags & core::elf::kRead) == 0 || s.vaddr % 4096 != s.offset % 4096) {
            std::abort();
        }
        next_page = (s.vaddr + s.memsz - 1) / 4096 + 1;
        if (executable && image.entry >= s.vaddr && image.entry - s.vaddr < s.filesz) {
            entry_ok = true;
        }
    }
    if (!entry_ok) {
        std::abort();
    }
    return 0;
}
