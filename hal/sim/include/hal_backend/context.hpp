#pragma once

// The simulator's ArchContext: a suspended fiber on the host. Every kernel thread is a
// Boost.Context fiber; context_switch() jumps from one to the other on the same CPU.

namespace hal {

struct ArchContext {
    void* fiber = nullptr; // boost::context::detail::fcontext_t of the suspended fiber
};

} // namespace hal
