#pragma once

// TLB shootdown: once a page leaves a user address space's tables, every CPU that may still
// cache its translation flushes before the frame (or an emptied table) is reused. A CPU
// caches a user address space's translations only while it has that space loaded, which
// Cpu::user_pml4 says (core/include/core/cpu.hpp); so the CPUs to interrupt are those whose
// user_pml4 is the space's PML4, and a space loaded on the calling CPU alone costs no IPI.
//
// Each target gets a hal::IpiKind::FlushTlb IPI; its handler flushes the whole TLB and then
// acknowledges every request made before the flush began (a global generation, so one flush
// answers any number of concurrent shootdowns, and a duplicate or late IPI is harmless).
//
// NOTE: the order that makes it safe. The sender changes the tables, then takes a generation
// with a sequentially consistent read-modify-write (a full barrier: LOCK XADD), then reads
// every CPU's user_pml4. The switch path publishes a CPU's user_pml4 (a sequentially
// consistent store) before it loads CR3. So a CPU the sender does not see with the space
// loaded has either not loaded it yet, and its walks will read the new tables, or has already
// moved off it and its CR3 load dropped every entry (no PCIDs, no global user pages); the few
// instructions between its store and that CR3 load run in the kernel and touch no user page.

#include <core/mm/page_table.hpp>

#include <hal/types.hpp>

#include <stdint.h>

namespace core::mm {

// Every CPU other than the caller that has `user_pml4` loaded has flushed its TLB before this
// returns. Thread context, interrupts enabled, no spinlock held (it waits for the other CPUs,
// which may have interrupts off for a while). The caller has already changed the page tables
// and flushes its own TLB itself; a thread may move to another CPU while this waits, so a
// caller that is not pinned uses the overload below.
void tlb_shootdown(hal::PhysAddr user_pml4);

// As above, and the calling CPU invalidates `local`'s pages in the same interrupts-off step in
// which it picks the CPUs to interrupt, so that a thread that moves to another CPU while it
// waits leaves no stale translation behind: every CPU that had the space loaded then either
// is the one that invalidated or is interrupted, and one that loads it later reloads CR3.
// `local` keeps the tables the changes emptied: flush() it afterwards to free them.
void tlb_shootdown(hal::PhysAddr user_pml4, FlushBatch& local);

// The FlushTlb IPI's handler (core::on_ipi): flushes the calling CPU's TLB and acknowledges
// every shootdown that had begun. Interrupts off.
void on_tlb_shootdown_ipi();

struct ShootdownStats {
    uint64_t shootdowns = 0; // tlb_shootdown() calls
    uint64_t ipis = 0;       // FlushTlb IPIs they sent
    uint64_t flushes = 0;    // FlushTlb IPIs handled (a duplicated IPI counts twice)
};
ShootdownStats shootdown_stats();

} // namespace core::mm
