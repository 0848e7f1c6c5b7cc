#pragma once

// Types shared by the HAL contract and the core.

#include <stddef.h>
#include <stdint.h>

namespace hal {

/// A physical address. Explicit in and out: it never turns into an integer by accident.
class PhysAddr {
public:
    constexpr PhysAddr() = default;
    constexpr explicit PhysAddr(uint64_t value) : m_value(value) {}
    constexpr uint64_t value() const { return m_value; }
    constexpr PhysAddr offset(uint64_t bytes) const { return PhysAddr(m_value + bytes); }
    constexpr PhysAddr align_down(uint64_t a) const { return PhysAddr(m_value & ~(a - 1)); }
    constexpr PhysAddr align_up(uint64_t a) const { return PhysAddr((m_value + a - 1) & ~(a - 1)); }
    constexpr bool is_aligned(uint64_t a) const { return (m_value & (a - 1)) == 0; }
    // NOTE: spelled out, because <compare> is not available to the freestanding kernel.
    constexpr bool operator==(const PhysAddr&) const = default;
    constexpr bool operator<(const PhysAddr& o) const { return m_value < o.m_value; }
    constexpr bool operator<=(const PhysAddr& o) const { return m_value <= o.m_value; }
    constexpr bool operator>(const PhysAddr& o) const { return m_value > o.m_value; }
    constexpr bool operator>=(const PhysAddr& o) const { return m_value >= o.m_value; }

private:
    uint64_t m_value = 0;
};

/// A kernel virtual address.
class VirtAddr {
public:
    constexpr VirtAddr() = default;
    constexpr explicit VirtAddr(uint64_t value) : m_value(value) {}
    constexpr uint64_t value() const { return m_value; }
    constexpr VirtAddr offset(uint64_t bytes) const { return VirtAddr(m_value + bytes); }
    constexpr VirtAddr align_down(uint64_t a) const { return VirtAddr(m_value & ~(a - 1)); }
    constexpr bool is_aligned(uint64_t a) const { return (m_value & (a - 1)) == 0; }
    // NOTE: spelled out, because <compare> is not available to the freestanding kernel.
    constexpr bool operator==(const VirtAddr&) const = default;
    constexpr bool operator<(const VirtAddr& o) const { return m_value < o.m_value; }
    constexpr bool operator<=(const VirtAddr& o) const { return m_value <= o.m_value; }
    constexpr bool operator>(const VirtAddr& o) const { return m_value > o.m_value; }
    constexpr bool operator>=(const VirtAddr& o) const { return m_value >= o.m_value; }

private:
    uint64_t m_value = 0;
};

/// The verdict a run ends with. Bare metal writes it to QEMU's isa-debug-exit device; the
/// simulator turns it into its exit status.
enum class ExitCode : uint8_t {
    Success = 0,
    Failure = 1, ///< A check failed: the kernel says the run is wrong.
    Panic = 2,   ///< The kernel hit an unrecoverable error (exception, assertion).
};

/// Why one CPU interrupts another.
enum class IpiKind : uint8_t {
    Reschedule = 0, ///< Run the scheduler on return from the interrupt.
    Halt = 1,       ///< Stop: the machine is going down.
    FlushTlb = 2,   ///< Flush the whole TLB and acknowledge (core/include/core/mm/shootdown.hpp).
};

/// Saved interrupt state, as returned by irq_save(). Opaque to the core.
using IrqFlags = uint64_t;

} // namespace hal
