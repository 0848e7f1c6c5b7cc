#pragma once

// The IDT (one, shared by every CPU) and what the entry stubs in cpu/interrupt_entry.S call.

#include <stdint.h>

namespace x86_interrupts {

// Fills the IDT. Once, on the bootstrap CPU, before any CPU loads it.
void build_idt();

// Loads the IDT on the calling CPU and marks the CPU ready for interrupts (and NMIs).
void load_idt();

} // namespace x86_interrupts

extern "C" {

// What the stubs leave on the stack, lowest address first.
struct ExceptionFrame {
    uint64_t vector;
    uint64_t error; // zero for the vectors without an error code
    uint64_t rip;
    uint64_t cs;
    uint64_t rflags;
    uint64_t rsp;
    uint64_t ss;
};

// Reports exception frame->vector on COM1 and stops the machine with ExitCode::Panic; a page
// fault goes to core::on_page_fault(), which reports it (a kernel stack overflow by name).
// Returns, having rewritten the frame, in two cases (cpu/user.cpp): an exception in user mode
// (the frame then resumes in ring 0 at x86_user_fault_trampoline, which kills the process), and
// a page fault in a user copy (it resumes at the copy's fix-up).
void x86_exception(ExceptionFrame* frame);

// Handles interrupt `vector` (32-255) on the calling CPU, interrupts disabled; `from_user`:
// the interrupted code ran in ring 3 (its thread may end before it goes back there).
void x86_interrupt(uint64_t vector, uint32_t from_user);
}
