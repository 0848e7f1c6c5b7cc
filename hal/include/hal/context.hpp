#pragma once

/// @file
/// Kernel thread contexts. `ArchContext` is defined by the backend (saved registers on bare
/// metal, a fiber in the simulator); the core only allocates it and passes it here.

#include <hal/types.hpp>
#include <hal_backend/context.hpp>

namespace hal {

// `ContextEntry`, the entry point of a new context (`void (*)(void* arg)`), comes with the
// backend's ArchContext. It must never return: a thread ends by switching away.

/// Prepares `ctx` so that the first context_switch() to it runs `entry(arg)` with interrupts
/// disabled (the entry enables them once the switch is complete), on the kernel stack [stack_base,
/// stack_base + stack_size) (both 16-byte aligned; the page below it is the guard). `name` names
/// the thread in fault reports and must outlive the context. Any context; does not switch. In the
/// simulator the fiber runs on a host stack of the same size with a protected page below it, so an
/// overflow is caught the same way, and the kernel stack's top page is still written and resumed
/// through each CPU's translation of it (a stale one stops the run: docs/simulator.md, "The TLB").
void context_init(ArchContext& ctx, VirtAddr stack_base, size_t stack_size, ContextEntry entry,
                  void* arg, const char* name);

/// The context will never run again (its thread exited and was switched away from): the
/// backend releases what it holds for it. Called from another context. Any interrupt state.
void context_release(ArchContext& ctx);

/// Saves the calling context into `from` and resumes `to`. Interrupt-safe by itself: it saves
/// the interrupt state with the context and restores the one `to` saved, so callers need not
/// disable interrupts. The caller must hold no spinlock (the core asserts it).
///
/// Returns when `from` is resumed, with the context the CPU left to resume it (the `from` of
/// the switch that came back here: the scheduler finishes that thread's switch without asking
/// its per-CPU data). A context's first run gets nothing of the kind: its entry runs instead.
ArchContext& context_switch(ArchContext& from, ArchContext& to);

} // namespace hal
