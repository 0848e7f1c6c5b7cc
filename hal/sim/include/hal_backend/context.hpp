#pragma once

// The simulator's ArchContext: a suspended fiber on the host. Every kernel thread is a
// Boost.Context fiber; context_switch() jumps from one to the other on the same CPU.

namespace hal {

using ContextEntry = void (*)(void* arg);

struct ArchContext {
    void* fiber = nullptr;        // boost::context::detail::fcontext_t while suspended
    ContextEntry entry = nullptr; // until first run
    void* arg = nullptr;
    bool irq_enabled = false;  // the interrupt state saved with the context
    unsigned stack_writer = 0; // the CPU that wrote its first frame (see stack_page)
    // The stack it runs on (for AddressSanitizer's fiber annotations).
    const void* stack_bottom = nullptr;
    unsigned long stack_size = 0;
    void* host_stack = nullptr; // the simulator's FiberStack, if it gave the context one
    // The kernel's stack as the machine would use it: the virtual address of its top page (0
    // when it is not a kernel-half page the tables mapped when the context was made), and the
    // frame that page was written through then, by stack_writer's translation (contexts.cpp
    // checks each resume against it).
    uint64_t stack_page = 0;
    uint64_t stack_frame = 0;
    const char* name = nullptr;
    // Race builds: its ThreadSanitizer fiber, and the CPU that fiber's name gives.
    void* race_fiber = nullptr;
    unsigned race_cpu = ~0u;
};

} // namespace hal
