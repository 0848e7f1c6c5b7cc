#pragma once

// Per-CPU data: one `struct Cpu` per CPU, owned by the core, with the per-CPU part of every
// subsystem. The backend hands back the calling CPU's through hal::this_cpu() (one
// %gs-relative load on bare metal, the executor's current CPU in the simulator). The allocators
// are the exception: an allocator finds the calling CPU's cache by its number (my_cache()), so
// that the same code serves the kernel's allocators and the tests' own instances.
//
// Laid out by who writes what: the lock state, which every spinlock touches, first; then the
// scheduler's part, which other CPUs lock to queue and steal threads, and the frame cache,
// which other CPUs drain when memory runs short (each on cache lines of its own); then what only
// boot touches. The kernel heap's per-CPU caches are the exception: a heap keeps pointers to
// its own (core/mm/heap.hpp), so that tests can run several heaps on one machine.

#include <core/lib/limits.hpp>
#include <core/mm/frame_allocator.hpp>
#include <core/mm/kernel_space.hpp>
#include <core/sched/cpu_sched.hpp>
#include <core/sync/spinlock.hpp>

#include <hal/context.hpp>
#include <hal/cpu.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core {

struct Cpu {
    // NOTE: first: spinlocks reach it through hal::this_cpu() without the rest (spinlock.hpp).
    CpuLocks locks;
    uint32_t index = 0; // 0 .. hal::cpu_count() - 1
    bool online = false;

    sched::CpuSched sched;

    // The kernel frame allocator's (mm::frames()) cache of free frames for this CPU.
    mm::FrameAllocator::CpuCache frame_cache;

    // The user address space loaded on this CPU (its PML4), or 0 while the kernel's is: the
    // switch path (user::switch_to) loads another only when a thread needs it.
    hal::PhysAddr user_pml4{};

    // Boot (core/boot/boot_main.cpp): the context the CPU leaves on its bring-up stack, its
    // first context on its kernel stack (which becomes its idle thread), and that stack, in the
    // kernel address space below an unmapped guard page.
    hal::ArchContext bring_up{};
    hal::ArchContext first{};
    mm::KernelStack stack{};
};
static_assert(offsetof(Cpu, locks) == 0, "spinlocks find a CPU's locks at its start");

// The CPU table: entry i is CPU i's. Through cpu(i) and this_cpu().
extern Cpu g_cpus[kMaxCpus];

// CPU `index`'s entry, from any CPU (reports, placement, stealing, boot).
inline Cpu& cpu(uint32_t index) {
    return g_cpus[index];
}

// The calling CPU's entry. Installed by install_this_cpu() (core/boot/smp.hpp) before anything
// else on each CPU's boot path, so the core never sees it null.
inline Cpu& this_cpu() {
    return *hal::this_cpu();
}

} // namespace core
