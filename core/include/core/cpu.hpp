#pragma once

// Per-CPU data: one `struct Cpu` per CPU, owned by the core; the backend hands back the
// calling CPU's through hal::this_cpu().

#include <core/sync/lock_rank.hpp>

#include <hal/cpu.hpp>

#include <stdint.h>

namespace core {

class SpinLock;

inline constexpr uint32_t kMaxCpus = 256;

struct Cpu {
    uint32_t index = 0;
    // Nesting depth of InterruptGuard and the interrupt state the outermost one saved.
    uint32_t irq_nesting = 0;
    bool irq_were_enabled = false;
    bool online = false;
    // The spinlock this CPU is spinning on, for reports of who waits for what.
    const SpinLock* waiting_for = nullptr;
    // The ranks of the spinlocks held (bit r: rank r), and the lock held at each. No two locks
    // of one rank are ever held together, so this is also what the CPU holds: the switch
    // asserts it is empty.
    uint32_t ranks_held = 0;
    const SpinLock* held[kLockRanks] = {};
    uint64_t timer_interrupts = 0;
    uint64_t ipis = 0;
};

// The CPU table. Index i is CPU i.
Cpu& cpu(uint32_t index);

// The calling CPU's entry, or null before per-CPU data is installed on it. Inline: every
// spinlock asks, twice.
inline Cpu* current_cpu() {
    return hal::this_cpu();
}

} // namespace core
