#pragma once

/// @file
/// Kernel thread contexts. `ArchContext` is defined by the backend (saved registers on bare
/// metal, a fiber in the simulator); the core only allocates it and passes it here.

#include <hal/types.hpp>
#include <hal_backend/context.hpp>

namespace hal {

// `ContextEntry`, the entry point of a new context (`void (*)(void* arg)`), comes with the
// backend's ArchContext. It must never return: a thread ends by switching away.

/// Prepares `ctx` so that the first context_switch() to it runs `entry(arg)` on the stack
/// whose highest address is `stack_top` (16-byte aligned), with interrupts enabled.
/// Any context; does not switch.
void context_init(ArchContext& ctx, VirtAddr stack_top, ContextEntry entry, void* arg);

/// Saves the calling context into `from` and resumes `to`. Interrupt-safe by itself: it saves
/// the interrupt state with the context and restores the one `to` saved, so callers need not
/// disable interrupts. The caller must hold no spinlock (the core asserts it).
void context_switch(ArchContext& from, ArchContext& to);

} // namespace hal
