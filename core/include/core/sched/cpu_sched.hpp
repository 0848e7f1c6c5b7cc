#pragma once

// The scheduler's part of a CPU (core::Cpu::sched): its run queues and their lock, what it runs,
// its sleepers and timer, its counters. Other CPUs take the lock to queue a thread here or to
// steal one; the rest only this CPU touches.

#include <core/lib/atomic.hpp>
#include <core/sched/policy.hpp>
#include <core/sched/run_queue.hpp>
#include <core/sched/thread.hpp>
#include <core/sync/spinlock.hpp>

#include <stdint.h>

namespace core::sched {

// A CPU's sleeping threads, sorted by deadline; equal deadlines wake in the order they slept.
struct Sleepers {
    Thread* first = nullptr;
    Thread* last = nullptr; // null when there is no sleeper

    // Adds `t` (its wake_at set); true if it is the new first sleeper, which the timer must
    // now serve.
    // NOTE: most sleepers go last: a CPU's clock only moves on, so a sleep as long as the one
    // before it ends after it. Those are placed without walking the list, which reads each
    // sleeper's cold Thread (5,000 of them a sleep with 20,000 sleepy threads on 4 CPUs); the
    // others take the linear walk.
    bool insert(Thread* t) {
        t->in_timer = true;
        if (last != nullptr && last->wake_at <= t->wake_at) {
            t->timer_next = nullptr;
            last->timer_next = t;
            last = t;
            return false;
        }
        Thread** link = &first;
        while (*link != nullptr && (*link)->wake_at <= t->wake_at) {
            link = &(*link)->timer_next;
        }
        t->timer_next = *link;
        *link = t;
        if (t->timer_next == nullptr) {
            last = t;
        }
        return link == &first;
    }

    // Takes `t`, which is in this list, out of it (a sleep cut short).
    void remove(Thread* t) {
        Thread* before = nullptr;
        Thread** link = &first;
        while (*link != t) {
            before = *link;
            link = &(*link)->timer_next;
        }
        *link = t->timer_next;
        if (last == t) {
            last = before;
        }
        t->timer_next = nullptr;
        t->in_timer = false;
    }

    // Removes and returns the first sleeper if it is due at `now`, else null.
    Thread* pop_due(uint64_t now) {
        Thread* t = first;
        if (t == nullptr || !policy::sleeper_due(t->wake_at, now)) {
            return nullptr;
        }
        first = t->timer_next;
        if (first == nullptr) {
            last = nullptr;
        }
        t->timer_next = nullptr;
        t->in_timer = false;
        return t;
    }
};

// Per CPU, in frames from sched::init(): too big for the kernel image's bss.
struct CpuHistograms;

struct alignas(64) CpuSched {
    SpinLock lock{"runqueue", LockRank::RunQueue}; // the run queues and the sleepers
    RunQueue queues[2] = {RunQueue(0), RunQueue(1)};
    // queues[0] and queues[1], one of them each, from init(); swapped when a round ends.
    // NOTE: pointers, not an index: the switch path uses both without computing either.
    RunQueue* active_queue = nullptr;
    RunQueue* expired_queue = nullptr;
    uint64_t round = 0;
    Thread* current = nullptr;
    Thread* idle = nullptr;
    // The thread switched away from last: for a new thread's first run, which completes that
    // switch (a resumed thread learns it from hal::context_switch() instead).
    Thread* prev = nullptr;
    uint64_t slice_end = 0;
    uint64_t ticks = 0;
    uint32_t irq_depth = 0;
    // NOTE: other CPUs set it (enqueue(), under the lock) while this one reads and clears it
    // without: through these, atomically.
    bool need_resched = false;
    bool resched_needed() const { return atomic::load<atomic::relaxed>(&need_resched); }
    void set_need_resched(bool v) { atomic::store<atomic::relaxed>(&need_resched, v); }
    Sleepers sleepers;
    uint64_t timer_armed_for = policy::kNever;
    // While a thread runs, the armed timer serves as it is at the clocks [timer_fits_from,
    // timer_fits_from + timer_fits_span) (see refit_timer() in core/sched/timer.cpp); a span of 0:
    // at none.
    uint64_t timer_fits_from = 0;
    uint64_t timer_fits_span = 0;
    uint64_t balance_rounds = 0;
    // No queued thread's round is below this: the lowest round of the threads queued since the
    // queues were last empty (a queued thread's round does not change). A steal's walk of the
    // queues for the thread furthest behind stops at one at the floor: none can come before it.
    // NOTE: when 10,000 new threads wait on one CPU, each steal otherwise walks all of them.
    uint64_t round_floor = 0;
    // Counters (this CPU only writes them).
    uint64_t switches = 0;
    uint64_t preemptions = 0;
    uint64_t migrations = 0;
    uint64_t wakeups = 0;
    uint64_t steals = 0;
    uint64_t handoffs = 0;               // switches straight to a thread this CPU woke (handoff())
    CpuHistograms* histograms = nullptr; // run delays and wake-up latencies, from init()

    RunQueue& active() { return *active_queue; }
    RunQueue& expired() { return *expired_queue; }
    const RunQueue& active() const { return *active_queue; }
    const RunQueue& expired() const { return *expired_queue; }
    // May be read without the lock, as a hint.
    uint32_t queued() const { return queues[0].count() + queues[1].count(); }
    // Threads it has: queued plus the one it runs (not counting its idle thread). May be read
    // without the lock, as a hint: `current` and `idle` change under it, stored atomically
    // (set_current()).
    uint32_t load() const {
        const Thread* running = atomic::load<atomic::relaxed>(&current);
        return queued() +
               (running != nullptr && running != atomic::load<atomic::relaxed>(&idle) ? 1 : 0);
    }
    void set_current(Thread* t) { atomic::store<atomic::relaxed>(&current, t); }
    // Before `t` goes into either queue, its round set; under the lock (plain reads).
    void note_queued(const Thread& t) {
        if (queues[0].count_locked() + queues[1].count_locked() == 0 || t.round < round_floor) {
            round_floor = t.round;
        }
    }
};

} // namespace core::sched
