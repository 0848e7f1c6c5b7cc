// The page-fault handler. Nothing is resolved yet (no demand paging, no user processes):
// every fault is reported as precisely as the kernel can and ends in a panic.

#include <core/irq_entry.hpp>
#include <core/lib/log.hpp>
#include <core/lib/panic.hpp>
#include <core/mm/kernel_space.hpp>
#include <core/sched/thread.hpp>

#include <hal/cpu.hpp>
#include <hal/irq.hpp>
#include <hal/stop.hpp>

namespace core {

namespace {

// Error code bits (Intel SDM vol. 3, 4.7).
constexpr uint32_t kPfPresent = 1u << 0;
constexpr uint32_t kPfWrite = 1u << 1;
constexpr uint32_t kPfUser = 1u << 2;
constexpr uint32_t kPfReserved = 1u << 3;
constexpr uint32_t kPfInstruction = 1u << 4;

// NOTE: short words, so that the whole report fits one LogLine.
const char* cause(uint32_t code) {
    if (code & kPfReserved) {
        return "reserved bit";
    }
    return (code & kPfPresent) ? "protection" : "not present";
}

const char* access(uint32_t code) {
    if (code & kPfInstruction) {
        return (code & kPfUser) ? "user fetch" : "kernel fetch";
    }
    if (code & kPfWrite) {
        return (code & kPfUser) ? "user write" : "kernel write";
    }
    return (code & kPfUser) ? "user read" : "kernel read";
}

// The name of the calling CPU's thread if `address` is in the guard page below its stack
// (a CPU's own stack, which its idle thread runs on, has no thread record of its own).
const char* overflowing_thread(hal::VirtAddr address) {
    const sched::Thread* t = sched::current();
    if (t == nullptr || t->stack.bottom == hal::VirtAddr()) {
        return nullptr;
    }
    uint64_t bottom = t->stack.bottom.value();
    bool below = address.value() < bottom && address.value() >= bottom - mm::kFrameSize;
    return below ? t->name : nullptr;
}

} // namespace

void on_page_fault(hal::VirtAddr address, uint32_t error_code) {
    (void)hal::irq_save();
    uint32_t slot = 0;
    if (mm::kernel_space().is_stack_guard(address, &slot)) {
        LogLine line("panic");
        line.str("kernel stack overflow at ")
            .hex(address.value())
            .str(" (guard page of stack slot ")
            .dec(slot);
        if (const char* name = overflowing_thread(address)) {
            line.str(", thread ").str(name);
        }
        line.str(", cpu ").dec(hal::cpu_index()).chr(')');
    } else {
        LogLine("panic")
            .str("page fault: ")
            .str(access(error_code))
            .str(" at ")
            .hex(address.value())
            .str(": ")
            .str(cause(error_code))
            .str(" (error ")
            .hex(error_code, 2)
            .str(", cpu ")
            .dec(hal::cpu_index())
            .chr(')');
    }
    hal::halt_machine(hal::ExitCode::Panic);
}

} // namespace core
