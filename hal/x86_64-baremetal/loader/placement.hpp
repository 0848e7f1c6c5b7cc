#pragma once

// What Duet's loader checks before it copies anything to where the BIOS loader model puts it.
// The loader itself (image, bss, stack) is linked high (loader/link.ld) so that the copies
// miss it on every machine the real loader boots, but the model follows the firmware's map and
// the boot loader places the module, so both are checked:
//   - the initrd goes first, with memmove semantics: the module may overlap its destination;
//   - the kernel segment is copied out of the moved initrd to right after it: it must not
//     overwrite the initrd it is copied from;
//   - nothing may land on the loader, nor the module lie on it;
//   - the low area the loader writes last (trampoline page, bootboot and environment pages,
//     page tables, the zeroed room for 256 stacks) must miss the loader too.
// Pure: ranges in, a verdict out.

#include <hal/firmware/bios_loader.hpp>

#include <stdint.h>

namespace loader::placement {

struct Range {
    uint64_t start;
    uint64_t end; // one past the last byte
};

constexpr bool overlaps(Range a, Range b) {
    return a.start < b.end && b.start < a.end;
}

// The AP trampoline's page: the start-up IPI's vector 7, as the BIOS loader's.
inline constexpr uint64_t kTrampoline = 0x7000;
// Everything the loader writes below the initrd: the trampoline page (code, GDTs and the
// cores' hand-over data), the bootboot and environment pages, the page tables and the stacks.
inline constexpr Range kLowArea{kTrampoline, firmware::bios::kStacks + firmware::bios::kStackZone};

enum class Error {
    None,
    LowAreaOverlapsLoader, // the loader is linked too low
    ModuleOverlapsLoader,  // the boot loader put the initrd on the loader
    CopyOverlapsLoader,    // the initrd or the kernel copy would overwrite the loader
    KernelOverlapsInitrd,  // the kernel copy would overwrite the initrd it comes from
};

constexpr const char* describe(Error e) {
    switch (e) {
    case Error::None:
        return "no error";
    case Error::LowAreaOverlapsLoader:
        return "the loader lies in the low memory it hands over (0x7000-0x54000)";
    case Error::ModuleOverlapsLoader:
        return "the initrd module lies on the loader itself";
    case Error::CopyOverlapsLoader:
        return "the initrd and the kernel copy would overwrite the loader (linked at 19 MiB)";
    case Error::KernelOverlapsInitrd:
        return "the kernel copy would overwrite the initrd it is copied from";
    }
    return "unknown error";
}

// `loader` is the loader's image with its bss (its stack included), `module` where the boot
// loader left the initrd, `h` where the model puts the initrd and the kernel copy.
constexpr Error check(Range loader, Range module, const firmware::Handover& h) {
    if (overlaps(kLowArea, loader)) {
        return Error::LowAreaOverlapsLoader;
    }
    if (overlaps(module, loader)) {
        return Error::ModuleOverlapsLoader;
    }
    if (overlaps(Range{h.initrd, h.kernel + h.kernel_size}, loader)) {
        return Error::CopyOverlapsLoader;
    }
    if (overlaps(Range{h.initrd, h.initrd + h.initrd_size},
                 Range{h.kernel, h.kernel + h.kernel_size})) {
        return Error::KernelOverlapsInitrd;
    }
    return Error::None;
}

} // namespace loader::placement
