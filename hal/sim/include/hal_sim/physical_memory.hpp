#pragma once

// Simulated RAM: one MAP_NORESERVE host reservation covering the whole physical address
// range of the E820 map, in which only usable pages are readable and writable. The direct
// map is then a host pointer: phys_to_virt(pa) == base() + pa.

#include <hal/firmware/e820.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace hal_sim {

struct PhysRange {
    uint64_t base;
    uint64_t end; // exclusive
    bool operator==(const PhysRange&) const = default;
};

// The pages of `map` that are usable: every byte covered by a usable entry, no byte by an
// entry of another type. Sorted, merged, page-aligned.
std::vector<PhysRange> usable_pages(std::span<const firmware::E820Entry> map);

class PhysicalMemory {
public:
    // The simulator reserves host address space for physical addresses below this.
    static constexpr uint64_t kMaxPhysical = 1ull << 46;

    // Throws ConfigError if the map cannot be modelled.
    explicit PhysicalMemory(std::span<const firmware::E820Entry> map);
    PhysicalMemory(const PhysicalMemory&) = delete;
    PhysicalMemory& operator=(const PhysicalMemory&) = delete;
    ~PhysicalMemory();

    std::byte* base() const { return m_base; }
    uint64_t limit() const { return m_limit; }
    const std::vector<PhysRange>& usable() const { return m_usable; }

    void* at(uint64_t pa) const { return m_base + pa; }
    bool is_usable(uint64_t pa, uint64_t len) const;
    // Makes the usable pages of [base, end) read-only (a write faults, and the machine reports
    // it): what the firmware hands over mapped read-only.
    void protect_read_only(uint64_t base, uint64_t end);
    // Undoes it (tests).
    void protect_read_write(uint64_t base, uint64_t end);
    // Whether a host address lies in the reservation, and which physical address it is.
    bool contains(const void* host) const;
    uint64_t phys_of(const void* host) const;

private:
    std::byte* m_base = nullptr;
    uint64_t m_limit = 0;
    std::vector<PhysRange> m_usable;
};

} // namespace hal_sim
