#include <core/lib/compiler.hpp>
#include <core/mm/map_normalizer.hpp>

namespace core::mm {

namespace {

constexpr uint64_t align_up(uint64_t v) {
    return (v + kFrameSize - 1) & ~(kFrameSize - 1);
}
constexpr uint64_t align_down(uint64_t v) {
    return v & ~(kFrameSize - 1);
}

// Whole frames inside [base, end).
constexpr uint64_t frames_inside(uint64_t base, uint64_t end) {
    uint64_t b = align_up(base);
    uint64_t e = align_down(end);
    return b < e ? (e - b) >> kFrameShift : 0;
}

constexpr bool is_ram(MemoryType t) {
    return t == MemoryType::Usable || t == MemoryType::Kernel;
}

// Heapsort by address: in place, no recursion, O(n log n) even on adversarial input, which
// matters because this runs on the 1 KiB bring-up stack.
void sift_down(MapEvent* e, size_t root, size_t n) {
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n) {
            return;
        }
        if (child + 1 < n && e[child].address < e[child + 1].address) {
            ++child;
        }
        if (!(e[root].address < e[child].address)) {
            return;
        }
        MapEvent t = e[root];
        e[root] = e[child];
        e[child] = t;
        root = child;
    }
}

void sort_events(MapEvent* e, size_t n) {
    for (size_t i = n / 2; i > 0; --i) {
        sift_down(e, i - 1, n);
    }
    for (size_t end = n; end > 1; --end) {
        MapEvent t = e[0];
        e[0] = e[end - 1];
        e[end - 1] = t;
        sift_down(e, 0, end - 1);
    }
}

} // namespace

const char* memory_type_name(MemoryType type) {
    switch (type) {
    case MemoryType::Usable:
        return "usable";
    case MemoryType::Kernel:
        return "kernel";
    case MemoryType::AcpiReclaimable:
        return "acpi-reclaimable";
    case MemoryType::AcpiNvs:
        return "acpi-nvs";
    case MemoryType::Reserved:
        return "reserved";
    case MemoryType::Bad:
        return "bad";
    }
    return "reserved";
}

MemoryType e820_memory_type(uint32_t e820_type) {
    switch (e820_type) {
    case 1:
        return MemoryType::Usable;
    case 3:
        return MemoryType::AcpiReclaimable;
    case 4:
        return MemoryType::AcpiNvs;
    case 5:
        return MemoryType::Bad;
    default:
        return MemoryType::Reserved;
    }
}

MemoryType bootboot_memory_type(bootboot_abi::MmapType type) {
    switch (type) {
    case bootboot_abi::MmapType::Free:
        return MemoryType::Usable;
    case bootboot_abi::MmapType::Acpi:
        return MemoryType::AcpiNvs;
    case bootboot_abi::MmapType::Used:
    case bootboot_abi::MmapType::Mmio:
        return MemoryType::Reserved;
    }
    return MemoryType::Reserved;
}

BOOT_CODE Result<void> MapNormalizer::add(uint64_t base, uint64_t length, MemoryType type) {
    if (length == 0) {
        return {};
    }
    if (base >= kPhysicalAddressLimit || length > kPhysicalAddressLimit - base) {
        return Error::AddressOutOfRange;
    }
    if (m_capacity - m_count < 2) {
        return Error::CapacityExceeded;
    }
    m_events[m_count++] = {base, type, +1};
    m_events[m_count++] = {base + length, type, -1};
    return {};
}

BOOT_CODE Result<void> MapNormalizer::add_e820(const firmware::E820Entry& entry) {
    if (!firmware::e820_counts(entry)) {
        return {};
    }
    return add(entry.base, entry.length, e820_memory_type(entry.type));
}

BOOT_CODE Result<void> MapNormalizer::add_bootboot(const bootboot_abi::MmapEntry& entry) {
    return add(entry.base(), entry.length(), bootboot_memory_type(entry.type()));
}

BOOT_CODE Result<MapSummary> MapNormalizer::normalize(MemoryRegion* regions, size_t region_capacity,
                                                      FrameArea* areas, size_t area_capacity) {
    sort_events(m_events, m_count);

    // Sweep the boundaries in address order, keeping how many entries of each type cover the
    // current point; the type of [here, next boundary) follows from those counts alone.
    int32_t cover[kMemoryTypeCount] = {};
    constexpr auto kKernel = static_cast<size_t>(MemoryType::Kernel);
    MapSummary s;
    bool open = false;
    size_t i = 0;
    while (i < m_count) {
        uint64_t at = m_events[i].address;
        while (i < m_count && m_events[i].address == at) {
            cover[static_cast<size_t>(m_events[i].type)] += m_events[i].delta;
            ++i;
        }
        int type = -1;
        for (size_t t = kMemoryTypeCount; t-- > 0;) {
            if (t != kKernel && cover[t] > 0) {
                type = static_cast<int>(t);
                break;
            }
        }
        if (type == static_cast<int>(MemoryType::Usable) && cover[kKernel] > 0) {
            type = static_cast<int>(MemoryType::Kernel);
        }
        if (open && static_cast<int>(regions[s.regions - 1].type) == type) {
            continue;
        }
        if (open) {
            regions[s.regions - 1].end = at;
            open = false;
        }
        if (type >= 0) {
            if (s.regions == region_capacity) {
                return Error::CapacityExceeded;
            }
            regions[s.regions++] = {at, at, static_cast<MemoryType>(type)};
            open = true;
        }
    }

    // Usable frames: each Usable region aligned inward. RAM frames: each run of touching
    // Usable and Kernel regions aligned inward, as if the reservations were not there.
    size_t r = 0;
    while (r < s.regions) {
        if (!is_ram(regions[r].type)) {
            ++r;
            continue;
        }
        uint64_t run_base = regions[r].base;
        uint64_t run_end = regions[r].end;
        for (;;) {
            const MemoryRegion& m = regions[r];
            if (m.type == MemoryType::Usable && frames_inside(m.base, m.end) != 0) {
                if (s.areas == area_capacity) {
                    return Error::CapacityExceeded;
                }
                areas[s.areas++] = {hal::PhysAddr(align_up(m.base)),
                                    hal::PhysAddr(align_down(m.end))};
                s.usable_frames += frames_inside(m.base, m.end);
            }
            run_end = m.end;
            ++r;
            if (r == s.regions || regions[r].base != run_end || !is_ram(regions[r].type)) {
                break;
            }
        }
        s.ram_frames += frames_inside(run_base, run_end);
    }
    return s;
}

} // namespace core::mm
