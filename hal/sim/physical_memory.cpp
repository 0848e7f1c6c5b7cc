#include <hal_sim/error.hpp>
#include <hal_sim/physical_memory.hpp>

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace hal_sim {

namespace {

constexpr uint64_t kPage = firmware::kPage;

uint64_t entry_end(const firmware::E820Entry& e) {
    uint64_t end = e.base + e.length;
    return end < e.base ? ~uint64_t{0} : end;
}

} // namespace

std::vector<PhysRange> usable_pages(std::span<const firmware::E820Entry> map) {
    std::vector<PhysRange> usable;
    std::vector<PhysRange> other;
    for (const auto& e : map) {
        if (!firmware::e820_counts(e)) {
            continue;
        }
        uint64_t end = entry_end(e);
        if (e.type == firmware::kE820Usable) {
            uint64_t b = (e.base + kPage - 1) & ~(kPage - 1);
            uint64_t t = end & ~(kPage - 1);
            if (b < t) {
                usable.push_back({b, t});
            }
        } else {
            other.push_back({e.base & ~(kPage - 1), end});
        }
    }
    auto by_base = [](const PhysRange& a, const PhysRange& b) { return a.base < b.base; };
    std::sort(usable.begin(), usable.end(), by_base);
    std::sort(other.begin(), other.end(), by_base);

    // Merge overlapping or touching usable ranges.
    std::vector<PhysRange> merged;
    for (const auto& r : usable) {
        if (!merged.empty() && r.base <= merged.back().end) {
            merged.back().end = std::max(merged.back().end, r.end);
        } else {
            merged.push_back(r);
        }
    }
    // Cut every other range out, widened to whole pages.
    std::vector<PhysRange> result;
    for (auto r : merged) {
        for (const auto& o : other) {
            uint64_t ob = o.base;
            uint64_t oe = o.end > ~uint64_t{0} - (kPage - 1) ? ~uint64_t{0} & ~(kPage - 1)
                                                             : (o.end + kPage - 1) & ~(kPage - 1);
            if (oe <= r.base || ob >= r.end) {
                continue;
            }
            if (ob > r.base) {
                result.push_back({r.base, ob});
            }
            r.base = std::min(oe, r.end);
            if (r.base >= r.end) {
                break;
            }
        }
        if (r.base < r.end) {
            result.push_back(r);
        }
    }
    return result;
}

PhysicalMemory::PhysicalMemory(std::span<const firmware::E820Entry> map)
    : m_usable(usable_pages(map)) {
    for (const auto& e : map) {
        if (firmware::e820_counts(e)) {
            m_limit = std::max(m_limit, entry_end(e));
        }
    }
    if (m_usable.empty()) {
        throw ConfigError("the memory map has no usable RAM");
    }
    if (m_limit > kMaxPhysical) {
        throw ConfigError("the memory map reaches physical address " + std::to_string(m_limit) +
                          ", beyond the 64 TiB the simulator can model");
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

bool PhysicalMemory::contains(const void* host) const {
    auto* h = static_cast<const std::byte*>(host);
    return h >= m_base && h < m_base + m_limit;
}

uint64_t PhysicalMemory::phys_of(const void* host) const {
    return static_cast<uint64_t>(static_cast<const std::byte*>(host) - m_base);
}

} // namespace hal_sim
