// Fuzz target: reading the BOOTBOOT information page (core::validate_boot_info), then, for a
// page it accepts, what the core does with it: the memory-map log and the normaliser over
// its entries. The input is the page (padded with zeroes, or cut, to 4 KiB).

#include <core/boot/boot_info.hpp>
#include <core/mm/map_normalizer.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static bootboot_abi::Info info;
    std::memset(&info, 0, sizeof(info));
    std::memcpy(&info, data, size < sizeof(info) ? size : sizeof(info));
    if (core::validate_boot_info(info) != core::BootInfoError::None) {
        return 0;
    }
    (void)core::log_memory_map(info);
    static core::mm::MapEvent events[2 * bootboot_abi::kMaxMmapEntries];
    static core::mm::MemoryRegion regions[2 * bootboot_abi::kMaxMmapEntries];
    static core::mm::FrameArea areas[2 * bootboot_abi::kMaxMmapEntries];
    core::mm::MapNormalizer n(events, 2 * bootboot_abi::kMaxMmapEntries);
    for (size_t i = 0; i < info.mmap_count(); ++i) {
        if (!n.add_bootboot(info.mmap[i]).ok()) {
            return 0;
        }
    }
    (void)n.normalize(regions, 2 * bootboot_abi::kMaxMmapEntries, areas,
                      2 * bootboot_abi::kMaxMmapEntries);
    return 0;
}
