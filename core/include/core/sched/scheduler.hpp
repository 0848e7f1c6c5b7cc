#pragma once

// The per-CPU scheduler. Each CPU owns a run queue and its lock; there is no global lock on
// the switch path. Priorities preempt, time slices end at timer ticks, idle CPUs wait for
// interrupts and steal work, and wake-ups go to the thread's last CPU unless it is busy and
// another is idle, with an IPI when the target must reschedule.

#include <core/sched/thread.hpp>

#include <stdint.h>

namespace core {
class InvariantReport;
}

namespace core::sched {

struct Config {
    uint64_t tick_ns = 1'000'000;  // timer tick while a thread runs
    uint64_t slice_ns = 4'000'000; // a thread's time slice
    uint32_t balance_ticks = 4;    // a busy CPU evens out the run queues every this many ticks
    // A CPU that neither ticks nor switches, or a thread runnable without running, for this
    // long stops the machine with a report (sched/watchdog.cpp); 0: no watchdog.
    uint64_t watchdog_ns = 5'000'000'000;
    bool trace = false; // report switches and wake-ups to hal/trace.hpp
};

// Once, on the bootstrap CPU, before any thread exists and before the other CPUs start.
void init(const Config& config, uint32_t cpus);

// On every CPU, as the last thing of its boot path: the calling context becomes the CPU's idle
// thread, which runs whenever nothing else can. Never returns.
[[noreturn]] void run_cpu();

// Hooks for the interrupt handlers (core::on_timer, core::on_ipi).
void on_tick();
void on_reschedule_ipi();

// Makes a blocked thread runnable; false if it was not blocked (someone else woke it first).
bool wake(Thread* thread);

// Switches to the next thread. Interrupts must be off; the caller holds no spinlock.
void schedule();

// Direct hand-off, for synchronous IPC: the calling thread, which has just marked itself
// blocked (mark_blocked()), wakes `to`, a blocked thread, and switches straight to it on this
// CPU: `to` gets the rest of the caller's time slice and never passes through a run queue.
// If `to` may not run on this CPU (its affinity) or was not blocked (someone woke it first),
// it is woken the ordinary way and the caller schedules: false then. Interrupts off, no
// spinlock held.
bool handoff(Thread* to);

// The calling thread is blocked from now on: it must schedule() (or handoff()) next, with
// interrupts off from here to there; a wake() in between turns that into a switch back to it.
void mark_blocked();

// Switches now if a reschedule is pending and the caller is not inside an interrupt handler
// (waking a higher-priority thread on this CPU asks for one). The caller holds no spinlock.
void preempt_if_needed();

// Counters for the report. Read after a run (or on a quiet machine); no HAL calls.
struct Histogram {
    // Log-linear: a bucket for each value below 16, then 16 buckets per power of two (so a
    // percentile is within 1/16 of the truth) from 2^4 to 2^63: every uint64_t has one. One
    // per CPU, written only by its CPU: no atomics.
    static constexpr unsigned kSub = 16;
    static constexpr unsigned kBuckets = kSub + 60 * kSub;
    uint64_t counts[kBuckets] = {};
    uint64_t max = 0;

    // The bucket of value v.
    static unsigned index(uint64_t v) {
        if (v < kSub) {
            return static_cast<unsigned>(v);
        }
        unsigned msb = 63u ^ static_cast<unsigned>(__builtin_clzll(v)); // bsr
        // Power msb's buckets start at (msb - 3) * 16; v >> (msb - 4) is 16 plus the four bits
        // below the top one.
        return msb * kSub + static_cast<unsigned>(v >> (msb - 4)) - 4 * kSub;
    }
    // Inline: the switch path records a run delay every time.
    void record(uint64_t v) {
        ++counts[index(v)];
        if (v > max) [[unlikely]] {
            max = v;
        }
    }
    // The number of values recorded (a sum over the buckets: the switch path keeps no count).
    uint64_t total() const;
    // The largest value in bucket i.
    static uint64_t bound(unsigned i);
    // The upper bound of the bucket holding the `permille`/1000 quantile, but never above the
    // largest value; 0 if nothing was recorded.
    uint64_t percentile(uint32_t permille) const;
};

struct Stats {
    uint64_t context_switches = 0;
    uint64_t preemptions = 0;
    uint64_t migrations = 0;
    uint64_t wakeups = 0;
    uint64_t steals = 0;
    uint64_t handoffs = 0; // handoff()s that switched directly
    uint64_t threads_created = 0;
    uint64_t threads_exited = 0;
    uint64_t threads_live = 0;
    uint64_t spawn_failures = 0;
    // Runnable until running, per dispatch; wake-up (or a sleep's deadline) until running.
    // Percentiles, not the histograms: this travels on kernel stacks.
    uint64_t run_delay_p50 = 0;
    uint64_t run_delay_p99 = 0;
    uint64_t wakeup_latency_p50 = 0;
    uint64_t wakeup_latency_p99 = 0;
    uint64_t wakeup_latency_max = 0;
    // For Jain's fairness index over CPU-bound threads, (sum x)^2 / (n * sum x^2), with x a
    // thread's share of a CPU since it was due (Thread::share_from_ns) in 1/65536ths (integers: the
    // kernel has no floating point).
    uint64_t fair_threads = 0;
    uint64_t fair_share_sum = 0;
    uint64_t fair_share_sum_sq = 0;
    uint32_t max_runnable = 0; // most threads in one CPU's queue (plus its running one) at the end
    uint32_t min_runnable = 0;
};

// `now`: the time the run ended (live threads' shares are measured up to it).
Stats stats(uint64_t now);

// One CPU's counters.
struct CpuCounters {
    uint64_t switches = 0;
    uint64_t preemptions = 0;
    uint64_t migrations = 0; // threads that came to this CPU from another
    uint64_t steals = 0;
    uint64_t handoffs = 0;
};
CpuCounters cpu_counters(uint32_t cpu);
uint32_t cpu_count();

// The run queues, sleepers and thread states against each other (core/invariants.hpp says
// which invariants); skipped, and counted as such, while a CPU holds a run-queue lock or the
// thread table's. Reads only: no lock, no HAL call.
void check_invariants(InvariantReport& report);

// The thread table, for reports and debuggers: calls fn(thread) for each live thread.
template <typename Fn>
void for_each_thread(Fn fn);

// Implementation of for_each_thread.
uint32_t thread_slots();
Thread* thread_at(uint32_t slot);

template <typename Fn>
void for_each_thread(Fn fn) {
    for (uint32_t i = 1; i < thread_slots(); ++i) {
        Thread* t = thread_at(i);
        if (t != nullptr && t->state != ThreadState::Free) {
            fn(*t);
        }
    }
}

} // namespace core::sched
