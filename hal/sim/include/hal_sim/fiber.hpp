#pragma once

// Fibers for the simulated machine: a guarded stack and the raw Boost.Context switch.
// We use the fcontext layer directly: it is the cheapest switch Boost offers, it never
// unwinds a fiber we abandon (a halted CPU simply stays suspended), and it leaves the
// sanitizer annotations to us.

#include <boost/context/detail/fcontext.hpp>

#include <cstddef>
#include <cstdint>

namespace hal_sim {

namespace fctx = boost::context::detail;

// A fiber stack from its own host mapping, with an inaccessible guard page below it so that
// an overflow faults at a known address instead of corrupting a neighbour.
class FiberStack {
public:
    static constexpr size_t kDefaultSize = 256 * 1024;

    FiberStack() = default;
    explicit FiberStack(size_t size);
    FiberStack(FiberStack&& other) noexcept;
    FiberStack& operator=(FiberStack&& other) noexcept;
    FiberStack(const FiberStack&) = delete;
    FiberStack& operator=(const FiberStack&) = delete;
    ~FiberStack();

    void* top() const { return m_base + m_guard + m_size; }
    size_t size() const { return m_size; }
    // The guard page's host address range: a fault in it is a stack overflow.
    bool in_guard(const void* addr) const;

private:
    std::byte* m_base = nullptr;
    size_t m_guard = 0;
    size_t m_size = 0;
};

} // namespace hal_sim
