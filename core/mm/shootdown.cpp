// TLB shootdown (core/include/core/mm/shootdown.hpp).

#include <core/cpu.hpp>
#include <core/lib/atomic.hpp>
#include <core/lib/limits.hpp>
#include <core/lib/panic.hpp>
#include <core/mm/shootdown.hpp>
#include <core/sync/spinlock.hpp>

#include <hal/cpu.hpp>
#include <hal/ipi.hpp>
#include <hal/irq.hpp>
#include <hal/mmu.hpp>

namespace core::mm {

namespace {

// Shootdowns begun: each takes the next value. Only ever grows.
uint64_t s_generation = 0;

// For each CPU, the generation its last FlushTlb flush covered: every shootdown that had taken
// a generation up to it when the flush began. Written by that CPU only; on lines of their own,
// as the targets write them while the senders spin on them.
struct alignas(64) FlushedUpTo {
    uint64_t generation = 0;
};
FlushedUpTo s_flushed[kMaxCpus];

ShootdownStats s_stats; // atomics

void count(uint64_t* counter, uint64_t n = 1) {
    atomic::fetch_add<atomic::relaxed>(counter, n);
}

void shootdown(hal::PhysAddr user_pml4, FlushBatch* local) {
    DEBUG_ASSERT(hal::irq_enabled());
    DEBUG_ASSERT(this_cpu_locks() == nullptr || this_cpu_locks()->ranks_held == 0);
    count(&s_stats.shootdowns);
    uint64_t targets[kMaxCpus / 64] = {};
    uint64_t generation = 0;
    bool any = false;
    {
        // NOTE: the CPU that invalidates `local` is the one left out below: a preemption
        // between the two would leave the CPU it ran on first with stale entries.
        InterruptGuard irq;
        if (local != nullptr) {
            local->invalidate();
        }
        uint32_t me = hal::cpu_index();
        // NOTE: the full barrier between the caller's table changes and the reads of
        // user_pml4 (shootdown.hpp says why it is needed).
        generation = atomic::fetch_add<atomic::seq_cst>(&s_generation, uint64_t{1}) + 1;
        uint32_t n = hal::cpu_count();
        for (uint32_t i = 0; i < n; ++i) {
            if (i == me || atomic::load<atomic::seq_cst>(&core::cpu(i).user_pml4) != user_pml4) {
                continue;
            }
            targets[i / 64] |= uint64_t{1} << (i % 64);
            any = true;
            count(&s_stats.ipis);
            hal::send_ipi(i, hal::IpiKind::FlushTlb);
        }
    }
    if (!any) {
        return;
    }
    // Interrupts on: a target may be waiting for this CPU's acknowledgement at the same time.
    for (uint32_t word = 0; word < kMaxCpus / 64; ++word) {
        for (uint64_t bits = targets[word]; bits != 0; bits &= bits - 1) {
            uint32_t i = word * 64 + static_cast<uint32_t>(__builtin_ctzll(bits));
            while (atomic::load<atomic::acquire>(&s_flushed[i].generation) < generation) {
                hal::cpu_relax();
            }
        }
    }
}

} // namespace

void tlb_shootdown(hal::PhysAddr user_pml4) {
    shootdown(user_pml4, nullptr);
}

void tlb_shootdown(hal::PhysAddr user_pml4, FlushBatch& local) {
    shootdown(user_pml4, &local);
}

void on_tlb_shootdown_ipi() {
    // NOTE: read before the flush: every shootdown that took a generation up to this one had
    // changed its tables first, so this flush covers it.
    uint64_t generation = atomic::load<atomic::seq_cst>(&s_generation);
    hal::flush_tlb_all();
    FlushedUpTo& mine = s_flushed[hal::cpu_index()];
    // Only this CPU writes it, one handler at a time: the value only grows.
    if (generation > mine.generation) {
        atomic::store<atomic::release>(&mine.generation, generation);
    }
    count(&s_stats.flushes);
}

ShootdownStats shootdown_stats() {
    ShootdownStats s;
    s.shootdowns = atomic::load<atomic::relaxed>(&s_stats.shootdowns);
    s.ipis = atomic::load<atomic::relaxed>(&s_stats.ipis);
    s.flushes = atomic::load<atomic::relaxed>(&s_stats.flushes);
    return s;
}

} // namespace core::mm
