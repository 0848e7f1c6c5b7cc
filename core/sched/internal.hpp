#pragma once

// What the scheduler's parts share, private to core/sched/:
//   thread_table.cpp  the thread table: slots, handles, lifecycle (spawn, exit, join)
//   timer.cpp         sleepers, the one-shot timer, the tick
//   placement.cpp     where runnable threads go: wake-ups, queueing, stealing
//   switch.cpp        picking the next thread and switching to it; each CPU's idle loop
//   stats.cpp         counters, histograms, fairness
//   invariants.cpp    the checks the simulator runs between steps
// The rules they apply are in core/sched/policy.hpp.

#include <core/cpu.hpp>
#include <core/lib/atomic.hpp>
#include <core/lib/compiler.hpp>
#include <core/lib/panic.hpp>
#include <core/mm/kernel_space.hpp>
#include <core/sched/scheduler.hpp>

#include <hal/context.hpp>
#include <hal/time.hpp>

#include <stdint.h>

namespace core::sched {

// Per CPU (CpuSched::histograms), in frames allocated by init(): too big for the kernel
// image's bss.
struct CpuHistograms {
    Histogram run_delay;
    Histogram wakeup_latency;
    // The threads that exited on this CPU, and what the CPU-bound ones among them add to the
    // fairness index: per CPU, written by it with interrupts off (exit()), so that an exit
    // takes no global lock; stats() sums them.
    uint64_t exits = 0;
    uint64_t fair_sum = 0;
    uint64_t fair_sum_sq = 0;
    uint64_t fair_n = 0;
};
static_assert(sizeof(CpuHistograms) <= (size_t{4096} << kStackOrder));

} // namespace core::sched

namespace core::sched::detail {

inline constexpr uint32_t kNoCpu = ~0u;

// From init().
extern Config g_config;
extern uint32_t g_cpu_count;

// Bit i: CPU i runs its idle thread with an empty queue. A hint for placing wake-ups.
extern uint64_t g_idle_mask[kMaxCpus / 64];

ALWAYS_INLINE void set_idle(uint32_t cpu, bool idle) {
    uint64_t bit = uint64_t{1} << (cpu % 64);
    // NOTE: most switches leave the bit as it is: a plain load spares them a locked
    // read-modify-write. A stale answer costs a needless update, or leaves the hint wrong
    // until this CPU's next switch, as racing with another CPU's update could anyway.
    if (policy::idle_in(g_idle_mask, cpu) == idle) {
        return;
    }
    if (idle) {
        atomic::fetch_or<atomic::relaxed>(&g_idle_mask[cpu / 64], bit);
    } else {
        atomic::fetch_and<atomic::relaxed>(&g_idle_mask[cpu / 64], ~bit);
    }
}

// Each CPU's load() and queued() as one word, load in the high half: what steal() compares for
// every CPU, in one array that it reads as a few cache lines instead of three lines of each
// CPU's entry (256 CPUs, 10,000 threads: steal() went from 9% of the run to 6%). The holder of
// the CPU's lock stores it whenever either changes (publish_load()); others read it as a hint.
extern uint64_t g_load_hints[kMaxCpus];

// Under `cs`'s lock, which orders every change to what it reads: plain reads, so that keeping
// the hint adds a synchronisation point only when it changes.
ALWAYS_INLINE void publish_load(uint32_t cpu, const CpuSched& cs) {
    uint32_t queued = cs.queues[0].count_locked() + cs.queues[1].count_locked();
    bool runs = cs.current != nullptr && cs.current != cs.idle;
    uint64_t hint = uint64_t{queued + (runs ? 1u : 0u)} << 32 | queued;
    if (g_load_hints[cpu] != hint) {
        atomic::store<atomic::relaxed>(&g_load_hints[cpu], hint);
    }
}

inline ThreadState state_of(const Thread* t) {
    return atomic::load<atomic::acquire>(&t->state);
}

inline void set_state(Thread* t, ThreadState s) {
    atomic::store<atomic::release>(&t->state, s);
}

// --- thread_table.cpp ---

// A fresh slot for a new thread (its id's generation one past the slot's last); `injectable`:
// the simulator may make the allocation of a new chunk of slots fail.
// With `number`, the slot of a spawn that can no longer fail: also the next thread number
// (Thread::number), and the thread counts as created; CapacityExceeded once numbers are used up.
Result<Thread*> alloc_slot(bool injectable, uint32_t* number);
void free_slot(Thread* t);
// The threads created so far; read without the lock (stats()).
uint64_t threads_created();
// For tests: the next number taken is `number + 1`.
void set_last_number(uint32_t number);
// Whether some CPU holds the table's lock (the invariant checks skip it then).
bool table_locked();
// The first code of every new thread (hal::context_init()'s entry).
void thread_start(void* arg);

// --- timer.cpp ---

// arm_timer()'s slow path (timer.cpp).
void arm_timer_slow(CpuSched& cs, uint64_t now);

// Arms this CPU's timer for its next event: the first sleeper's deadline, and the next tick
// while a thread other than the idle one runs (policy::timer_due()).
ALWAYS_INLINE void arm_timer(CpuSched& cs, uint64_t now) {
    // What nearly every switch finds (checked inline, as arm_timer_slow() would): a thread
    // runs and the timer is armed in time for both its tick and the first sleeper.
    if (!cs.current->idle && now - cs.timer_fits_from < cs.timer_fits_span) {
        return;
    }
    arm_timer_slow(cs, now);
}

// --- watchdog.cpp ---

// Arms the watchdog's first check (init()); when CPU `cpu`'s timer must fire for the next one
// (policy::kNever but on CPU 0); the check, from the timer interrupt, if it is due.
void watchdog_start(uint64_t now);
uint64_t watchdog_due(uint32_t cpu);
void watchdog_tick(uint64_t now);

// --- placement.cpp ---

// The CPU a thread that becomes runnable goes to (policy::place()).
uint32_t select_cpu(const Thread* t);

// Puts runnable thread `t` in `cpu`'s active queue and makes that CPU reschedule if it should.
void enqueue(uint32_t cpu, Thread* t);

// Takes a queued thread whose round is below `below_round` from another CPU into `self`'s
// active queue (see placement.cpp). Returns the CPU it took from, or kNoCpu.
uint32_t steal(uint32_t self, uint32_t margin, uint64_t below_round);

// --- stats.cpp ---

void count_spawn_failure();
// Counts `t`'s exit (with `code`) and hands its statistics to hal::thread_exited().
void record_exit_stats(Thread* t, uint64_t now, int code);

// --- switch.cpp ---

// slice_among(n) for the usual numbers of threads on a CPU, from init(): the switch path asks
// every time, and a division is slow.
inline constexpr uint32_t kSlicesKnown = 64;
extern uint64_t g_slices[kSlicesKnown];

// The time slice for a CPU with its queued threads and the one it is about to run.
ALWAYS_INLINE uint64_t slice_for(const CpuSched& cs) {
    uint32_t n = cs.queued() + 1;
    return n < kSlicesKnown ? g_slices[n]
                            : policy::slice_among(n, g_config.slice_ns, g_config.tick_ns);
}

// Completes the switch away from `prev` on the CPU that made it (now running another thread):
// marks it off the CPU, and frees its stack if it exited.
ALWAYS_INLINE void finish_switch(Thread* prev) {
    if (state_of(prev) == ThreadState::Exited) {
        hal::context_release(prev->context);
        if (auto r = mm::kernel_space().free_stack(prev->stack); !r.ok()) {
            panic_error("freeing an exited thread's stack", r.error());
        }
        prev->stack = mm::KernelStack{};
        bool detached = prev->detached;
        atomic::store<atomic::release>(&prev->on_cpu, false);
        if (detached) {
            free_slot(prev);
        }
        return;
    }
    atomic::store<atomic::release>(&prev->on_cpu, false);
}

} // namespace core::sched::detail
