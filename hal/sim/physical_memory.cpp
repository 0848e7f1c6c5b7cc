#include <hal_sim/error.hpp>
#include <hal_sim/firmware.hpp>
#include <hal_sim/physical_memory.hpp>

#include <core/mm/map_normalizer.hpp>

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace hal_sim {

namespace {

constexpr uint64_t kPage = 4096;

uint64_t entry_end(const firmware::E820Entry& e) {
    uint64_t end = e.base + e.length;
    return end < e.base ? ~uint64_t{0} : end;
}

} // namespace

std::vector<PhysRange> usable_pages(std::span<const firmware::E820Entry> map) {
    // The core's normaliser, so that the simulated RAM is exactly what the kernel will find.
    std::vector<core::mm::MapEvent> events(2 * map.size());
    core::mm::MapNormalizer normalizer(events.data(), events.size());
    for (size_t i = 0; i < map.size(); ++i) {
        const auto& e = map[i];
        if (!normalizer.add_e820(e).ok()) {
            char buf[96];
            std::snprintf(buf, sizeof buf, "[%#llx, +%#llx)",
                          static_cast<unsigned long long>(e.base),
                          static_cast<unsigned long long>(e.length));
            throw FirmwareError(std::string("memory map entry ") + buf +
                                    " reaches beyond the 52-bit physical address space",
                                i);
        }
    }
    std::vector<core::mm::MemoryRegion> regions(events.size());
    std::vector<core::mm::FrameArea> areas(events.size());
    auto summary = normalizer.normalize(regions.data(), regions.size(), areas.data(), areas.size());
    if (!summary.ok()) {
        throw ConfigError(std::string("cannot normalise the memory map: ") +
                          core::describe(summary.error()));
    }
    std::vector<PhysRange> usable;
    usable.reserve(summary.value().areas);
    for (size_t i = 0; i < summary.value().areas; ++i) {
        usable.push_back({areas[i].base.value(), areas[i].end.value()});
    }
    return usable;
}

PhysicalMemory::PhysicalMemory(std::span<const firmware::E820Entry> map)
    : m_usable(usable_pages(map)) {
    size_t highest = 0;
    for (size_t i = 0; i < map.size(); ++i) {
        if (firmware::e820_counts(map[i]) && entry_end(map[i]) > m_limit) {
            m_limit = entry_end(map[i]);
            highest = i;
        }
    }
    if (m_usable.empty()) {
        throw ConfigError("the memory map has no usable RAM");
    }
    if (m_limit > kMaxPhysical) {
        // NOTE: a limit of the model (host address space), not of x86_64: an entry within the
        // 52-bit physical address space can still end beyond it.
        char buf[160];
        std::snprintf(buf, sizeof buf,
                      "entry [%#llx, +%#llx) ends at %#llx, beyond the 64 TiB (%#llx) of physical "
                      "address space the simulator can model",
                      static_cast<unsigned long long>(map[highest].base),
                      static_cast<unsigned long long>(map[highest].length),
                      static_cast<unsigned long long>(m_limit),
                      static_cast<unsigned long long>(kMaxPhysical));
        throw FirmwareError(buf, highest);
    }
    m_limit = (m_limit + kPage - 1) & ~(kPage - 1);
    void* p = mmap(nullptr, m_limit, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        throw ConfigError(std::string("cannot reserve host address space for simulated RAM: ") +
                          std::strerror(errno));
    }
    m_base = static_cast<std::byte*>(p);
    for (const auto& r : m_usable) {
        if (mprotect(m_base + r.base, r.end - r.base, PROT_READ | PROT_WRITE) != 0) {
            int err = errno;
            munmap(m_base, m_limit);
            throw ConfigError(std::string("cannot map simulated RAM: ") + std::strerror(err));
        }
    }
}

PhysicalMemory::~PhysicalMemory() {
    if (m_base != nullptr) {
        munmap(m_base, m_limit);
    }
}

bool PhysicalMemory::is_usable(uint64_t pa, uint64_t len) const {
    uint64_t end = pa + len;
    if (end < pa) {
        return false;
    }
    auto it = std::upper_bound(m_usable.begin(), m_usable.end(), pa,
                               [](uint64_t v, const PhysRange& r) { return v < r.base; });
    if (it == m_usable.begin()) {
        return false;
    }
    --it;
    return pa >= it->base && end <= it->end;
}

namespace {

void protect(std::byte* ram, const PhysicalMemory& m, uint64_t base, uint64_t end, int prot) {
    base &= ~(kPage - 1);
    end = (end + kPage - 1) & ~(kPage - 1);
    if (end <= base || !m.is_usable(base, end - base)) {
        return;
    }
    if (mprotect(ram + base, end - base, prot) != 0) {
        throw ConfigError(std::string("cannot protect simulated RAM: ") + std::strerror(errno));
    }
}

} // namespace

void PhysicalMemory::protect_read_only(uint64_t base, uint64_t end) {
    protect(m_base, *this, base, end, PROT_READ);
}

void PhysicalMemory::protect_read_write(uint64_t base, uint64_t end) {
    protect(m_base, *this, base, end, PROT_READ | PROT_WRITE);
}

bool PhysicalMemory::contains(const void* host) const {
    auto* h = static_cast<const std::byte*>(host);
    return h >= m_base && h < m_base + m_limit;
}

uint64_t PhysicalMemory::phys_of(const void* host) const {
    return static_cast<uint64_t>(static_cast<const std::byte*>(host) - m_base);
}

} // namespace hal_sim
