// Kernel thread contexts on bare metal: the C++ half of cpu/context_switch.S.

#include "cpu/gdt.hpp"

#include <hal/context.hpp>
#include <hal/cpu.hpp>

#include <stddef.h>
#include <stdint.h>

// Returns the `save_rsp` of the switch that resumed the caller's context.
extern "C" uint64_t* duet_context_switch(uint64_t* save_rsp, uint64_t load_rsp);
extern "C" void duet_context_start();

namespace hal {

void context_init(ArchContext& ctx, VirtAddr stack_base, size_t stack_size, ContextEntry entry,
                  void* arg, const char*) {
    uint64_t top = (stack_base.value() + stack_size) & ~uint64_t{15};
    auto* slot = reinterpret_cast<uint64_t*>(top);
    // What duet_context_switch pops, from the top down: the return address (so that after the
    // `ret` the stack is 16-byte aligned), RFLAGS (interrupts off: the thread's entry turns
    // them on), rbp, rbx = entry, r12 = arg, r13, r14, r15.
    *--slot = reinterpret_cast<uint64_t>(&duet_context_start);
    *--slot = 0x2; // RFLAGS: only the reserved bit 1
    *--slot = 0;   // rbp: the end of the frame chain, for backtraces
    *--slot = reinterpret_cast<uint64_t>(entry);
    *--slot = reinterpret_cast<uint64_t>(arg);
    *--slot = 0;
    *--slot = 0;
    *--slot = 0;
    ctx.rsp = reinterpret_cast<uint64_t>(slot);
    ctx.stack_top = top;
}

ArchContext& context_switch(ArchContext& from, ArchContext& to) {
    // An interrupt that changes privilege would land on the TSS's RSP0: the thread's own stack.
    if (to.stack_top != 0) {
        x86_gdt::set_kernel_stack(hal::cpu_index(), to.stack_top);
    }
    // The switch that comes back hands over its `&from.rsp`, which is its `from`.
    static_assert(offsetof(ArchContext, rsp) == 0);
    return *reinterpret_cast<ArchContext*>(duet_context_switch(&from.rsp, to.rsp));
}

void context_release(ArchContext& ctx) {
    // The stack is the core's to free; nothing else is held for a context.
    ctx = ArchContext{};
}

} // namespace hal
