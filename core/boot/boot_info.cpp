#include <core/boot/boot_info.hpp>
#include <core/lib/compiler.hpp>
#include <core/lib/log.hpp>

namespace core {

using bootboot_abi::Info;
using bootboot_abi::MmapType;

const char* describe(BootInfoError e) {
    switch (e) {
    case BootInfoError::None:
        return "no error";
    case BootInfoError::BadMagic:
        return "bad magic, not a BOOTBOOT information block";
    case BootInfoError::BadSize:
        return "header size is not 128 + 16 * entries within one page";
    case BootInfoError::NoCores:
        return "numcores is 0";
    case BootInfoError::UnsortedMap:
        return "memory map is not sorted by address";
    case BootInfoError::OverflowingMap:
        return "memory map entry wraps around the address space";
    }
    return "unknown error";
}

BOOT_CODE BootInfoError validate_boot_info(const Info& info) {
    const auto& h = info.header;
    for (int i = 0; i < 4; ++i) {
        if (h.magic[i] != bootboot_abi::kMagic[i]) {
            return BootInfoError::BadMagic;
        }
    }
    if (h.size < sizeof(bootboot_abi::Header) || h.size > sizeof(Info) ||
        (h.size - sizeof(bootboot_abi::Header)) % sizeof(bootboot_abi::MmapEntry) != 0) {
        return BootInfoError::BadSize;
    }
    if (h.numcores == 0) {
        return BootInfoError::NoCores;
    }
    size_t n = info.mmap_count();
    for (size_t i = 0; i < n; ++i) {
        const auto& e = info.mmap[i];
        if (e.base() + e.length() < e.base()) {
            return BootInfoError::OverflowingMap;
        }
        if (i > 0 && e.base() < info.mmap[i - 1].base()) {
            return BootInfoError::UnsortedMap;
        }
    }
    return BootInfoError::None;
}

const char* mmap_type_name(MmapType type) {
    switch (type) {
    case MmapType::Used:
        return "used";
    case MmapType::Free:
        return "free";
    case MmapType::Acpi:
        return "acpi";
    case MmapType::Mmio:
        return "mmio";
    }
    return "used";
}

BOOT_CODE MmapTotals log_memory_map(const Info& info) {
    MmapTotals totals;
    size_t n = info.mmap_count();
    for (size_t i = 0; i < n; ++i) {
        const auto& e = info.mmap[i];
        // Linux's e820 notation: inclusive end, so kernel developers can compare at a glance.
        LogLine("mmap")
            .str("[mem ")
            .hex(e.base())
            .chr('-')
            .hex(e.base() + e.length() - 1)
            .str("] ")
            .str(mmap_type_name(e.type()))
            .chr(' ')
            .size(e.length());
        if (e.type() == MmapType::Free) {
            totals.free_bytes += e.length();
        }
        ++totals.entries;
    }
    LogLine("mmap")
        .dec(totals.entries)
        .str(" entries, ")
        .dec(totals.free_bytes >> 10)
        .str(" KiB free");
    return totals;
}

} // namespace core
