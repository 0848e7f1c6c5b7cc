#pragma once

// The simulator's ArchContext: a suspended fiber on the host. Every kernel thread is a
// Boost.Context fiber; context_switch() jumps from one to the other on the same CPU.

namespace hal {

using ContextEntry = void (*)(void* arg);

struct ArchContext {
    void* fiber = nullptr;        // boost::context::detail::fcontext_t while suspended
    ContextEntry entry = nullptr; // until first run
    void* arg = nullptr;
    bool irq_enabled = false; // the interrupt state saved with the context
    // The stack it runs on (for AddressSanitizer's fiber annotations).
    const void* stack_bottom = nullptr;
    unsigned long stack_size = 0;
    void* host_stack = nullptr; // the simulator's FiberStack, if it gave the context one
    const char* name = nullptr;
    // Race builds: its ThreadSanitizer fiber, and the CPU that fiber's name gives.
    void* race_fiber = nullptr;
    unsigned race_cpu = ~0u;
};

} // namespace hal
