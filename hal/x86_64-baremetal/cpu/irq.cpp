// Local interrupt state: RFLAGS.IF.

#include "cpu/x86.hpp"
#include "devices/serial.hpp"

#include <hal/bootboot.hpp>
#include <hal/irq.hpp>
#include <hal/stop.hpp>

namespace {

// The BOOTBOOT stacks: the top kMaxCores KiB of the address space.
constexpr uint64_t kBringUpStacks = 0 - bootboot_abi::kMaxCores * bootboot_abi::kInitStackSize;

bool on_bring_up_stack() {
    uint64_t rsp;
    asm volatile("mov %%rsp, %0" : "=r"(rsp));
    return rsp >= kBringUpStacks;
}

[[noreturn]] void refuse_interrupts_here() {
    static constexpr char kMessage[] =
        "panic: interrupts enabled on a 1 KiB bring-up stack outside wait_for_interrupt()\n";
    x86_serial::write_report(kMessage, sizeof kMessage - 1);
    hal::halt_machine(hal::ExitCode::Panic);
}

} // namespace

namespace hal {

void irq_restore(IrqFlags flags) {
    // NOTE: tools/check-stack.py lets interrupt frames onto the bring-up stacks only inside
    // hal::wait_for_interrupt(); enabling interrupts anywhere else there voids its proof.
    if ((flags & x86::kRflagsIf) != 0 && on_bring_up_stack()) {
        refuse_interrupts_here();
    }
    asm volatile("pushq %0; popfq" : : "r"(flags) : "memory", "cc");
}

void irq_enable() {
    irq_restore(x86::read_rflags() | x86::kRflagsIf);
}

} // namespace hal
