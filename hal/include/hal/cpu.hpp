#pragma once

/// @file
/// CPU identity and per-CPU data.

#include <hal/types.hpp>

namespace core {
struct Cpu;
}

namespace hal {

/// Index of the calling CPU, 0 .. cpu_count()-1, in the order the firmware listed the cores
/// (BOOTBOOT passes it in RDI). Any context, any interrupt state.
uint32_t cpu_index();

/// Number of CPUs the machine has (BOOTBOOT `numcores`). Any context.
uint32_t cpu_count();

/// The calling CPU's `core::Cpu`, or null before set_this_cpu(). Any context; cheap enough
/// for hot paths (one %gs-relative load on bare metal).
core::Cpu* this_cpu();

/// Installs the calling CPU's `core::Cpu`. Called once per CPU by the core during bring-up,
/// with interrupts off.
void set_this_cpu(core::Cpu* cpu);

/// Spin-wait hint (PAUSE). Call it in every busy-wait loop: in the simulator it is a
/// preemption point that lets the CPU being waited for make progress. Any context.
void cpu_relax();

/// A synchronisation point: the calling CPU is about to touch memory that other CPUs share,
/// with nothing but the memory model ordering it. Every atomic operation of the core
/// (core/lib/atomic.hpp) and so every spinlock acquire and release passes here, and interrupts
/// being turned on; the core also calls it where it reads shared state without a lock. Bare
/// metal: nothing. Simulator: under a --schedule that interleaves, another CPU may run first
/// (the calling CPU stalls, as a real one does on a cache miss or a preempted vCPU). Any
/// context.
void sync_point();

/// Waits until an interrupt arrives (STI; HLT). Called by an idle CPU with interrupts enabled
/// or disabled; returns with interrupts in the state they were in, after the handler ran.
void wait_for_interrupt();

/// Spends `ns` nanoseconds of CPU time doing modelled work (a computation the workload asks
/// for). Interrupts that come due meanwhile are delivered if enabled, as they would be during
/// a real computation; the work then goes on where it stopped. Bare metal: spins on the clock.
/// Simulator: advances the CPU's virtual clock (a preemption point). Thread context.
void cpu_work(uint64_t ns);

/// Lets the other CPUs go: each enters core::ap_main() on its own stack. Called once, by the
/// core on the bootstrap CPU, when per-CPU data for every CPU is ready. Interrupts off.
void release_secondary_cpus();

/// Short name of the backend ("x86_64-baremetal", "sim"), for the boot banner.
const char* machine_name();

} // namespace hal

// The backend's inline definitions of the hot functions, if it has any (last, as the design
// says: after the declarations above).
#include <hal_backend/inline.hpp>
