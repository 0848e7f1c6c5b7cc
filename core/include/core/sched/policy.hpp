#pragma once

// The scheduler's policy, as rules over plain values: which thread runs next, where a thread
// goes when it stops running, how long a slice is, when a slice's end or a wake-up preempts,
// which CPU a waking thread goes to, and what a steal takes. The scheduler (switch.cpp,
// timer.cpp, placement.cpp) applies them under its locks; tests/unit/sched_policy_test.cpp
// drives each one directly. docs/scheduler.md explains the design they make up.
//
// Fairness across CPUs comes from rounds (after distributed weighted round-robin): a thread's
// `round` counts the time slices it has used up. Each CPU serves its `round`: threads that
// still have a slice to use in it wait in the active queue, those that used theirs wait in the
// expired queue for the next round. When a CPU runs out of active threads it first takes
// threads from other CPUs that are behind its round, and only then moves to the next round.

#include <core/lib/atomic.hpp>
#include <core/sched/run_queue.hpp>
#include <core/sched/thread.hpp>

#include <stdint.h>

namespace core::sched::policy {

// --- Rounds. ---

// Whether a CPU moves to its next round before it picks a thread: when its active queue has
// run dry and the expired one has threads, or when a higher priority waits in the expired
// queue than any in the active one (lower priorities still in the active queue keep their turn
// and go along).
inline bool round_ends(const RunQueue& active, const RunQueue& expired) {
    return !expired.empty() && (active.empty() || expired.top_priority() > active.top_priority());
}

// The round a thread waits for once it has used its turn: the one after both its own and its
// CPU's.
inline uint64_t next_round(uint64_t thread_round, uint64_t cpu_round) {
    return (thread_round > cpu_round ? thread_round : cpu_round) + 1;
}

// The round a thread joins when it is queued on a CPU (woken, spawned or stolen): that CPU's,
// if it is behind it. Time spent asleep or queued elsewhere earns no credit.
inline uint64_t joining_round(uint64_t thread_round, uint64_t cpu_round) {
    return thread_round < cpu_round ? cpu_round : thread_round;
}

// --- Where a thread goes that stops running but is still runnable. ---

enum class Requeue : uint8_t {
    // Preempted by a higher priority mid-slice: it goes on first when it can, in this round.
    FrontOfActive,
    // Its turn in this round is over (its slice ran out, or it yielded): the next round.
    BackOfExpired,
};

inline Requeue requeue(bool yielded, bool slice_used) {
    return yielded || slice_used ? Requeue::BackOfExpired : Requeue::FrontOfActive;
}

// --- Slices and preemption. ---

// The time slice on a CPU with `threads` threads: `slice_ns` when few share it, shorter when
// many do (down to one tick), so that each gets a turn often enough for shares over a second to
// come out even: two slices' worth of time is divided among them.
inline uint64_t slice_among(uint32_t threads, uint64_t slice_ns, uint64_t tick_ns) {
    uint64_t slice = 2 * slice_ns / threads;
    if (slice > slice_ns) {
        slice = slice_ns;
    }
    return slice < tick_ns ? tick_ns : slice;
}

// At a tick past the end of its slice: whether the running thread gives way (-1: a queue is
// empty). It does to anything of its priority or higher, in either queue; with nobody to share
// with, it starts the next round here with a new slice.
inline bool slice_end_preempts(int active_top, int expired_top, int running_priority) {
    return active_top >= running_priority || expired_top >= running_priority;
}

// When a thread of `priority` is queued on a CPU: whether that CPU must reschedule. It must if
// it runs nothing but its idle thread, or a lower priority.
inline bool wakeup_preempts(bool cpu_idle, uint8_t priority, uint8_t running_priority) {
    return cpu_idle || priority > running_priority;
}

// --- Placement of a thread that becomes runnable. ---

// Whether CPU `cpu` runs its idle thread with an empty queue, per a bitmap (bit i of word
// i / 64: CPU i). A hint, read without a lock.
inline bool idle_in(const uint64_t* idle_words, uint32_t cpu) {
    return (atomic::load<atomic::relaxed>(&idle_words[cpu / 64]) >> (cpu % 64)) & 1;
}

// Where a thread that becomes runnable goes, woken or spawned by CPU `self` on a machine of
// `cpus` CPUs: to its affinity if it has one; else to its last CPU if that is idle; else to the
// waker's if idle; else to the first idle CPU; else to its last CPU. Idle CPUs are taken first
// so that a wake-up does not wait behind a running thread while a CPU sleeps.
inline uint32_t place(const Thread& t, uint32_t self, uint32_t cpus, const uint64_t* idle_words) {
    if (t.affinity != kAnyCpu) {
        return t.affinity;
    }
    uint32_t last = t.cpu < cpus ? t.cpu : self;
    if (idle_in(idle_words, last)) {
        return last;
    }
    if (idle_in(idle_words, self)) {
        return self;
    }
    for (uint32_t w = 0; w < (cpus + 63) / 64; ++w) {
        uint64_t bits = atomic::load<atomic::relaxed>(&idle_words[w]);
        if (bits != 0) {
            uint32_t cpu = w * 64 + static_cast<uint32_t>(__builtin_ctzll(bits));
            if (cpu < cpus) {
                return cpu;
            }
        }
    }
    return last;
}

// The idle CPU a busy CPU `self` with threads waiting in its queue wakes to take some, or
// `cpus` if none is idle. Idle CPUs sleep without ticks and take threads from others only
// when they wake: one that went idle just as threads were placed elsewhere (the placement saw
// it busy) would otherwise sleep on while they wait.
inline uint32_t idle_to_kick(uint32_t self, uint32_t cpus, const uint64_t* idle_words) {
    for (uint32_t w = 0; w < (cpus + 63) / 64; ++w) {
        uint64_t bits = atomic::load<atomic::relaxed>(&idle_words[w]);
        if (self / 64 == w) {
            bits &= ~(uint64_t{1} << (self % 64));
        }
        if (bits != 0) {
            uint32_t cpu = w * 64 + static_cast<uint32_t>(__builtin_ctzll(bits));
            return cpu < cpus ? cpu : cpus;
        }
    }
    return cpus;
}

// --- Stealing. ---

// Marks a steal that balances the number of threads rather than one that looks for threads
// behind a round.
inline constexpr uint64_t kAnyRound = ~uint64_t{0};

// Whether CPU `self`, with `mine` threads, may take from a CPU with `theirs` threads. To balance
// (`below_round` == kAnyRound) only from one with at least `margin` more; for threads behind a
// round, from any CPU not lighter than this one will be without them.
inline bool may_steal_from(uint32_t theirs, uint32_t mine, uint32_t margin, uint64_t below_round) {
    return below_round == kAnyRound ? theirs >= mine + margin : theirs + 1 >= mine;
}

// Whether a steal of a thread behind the round, from a CPU with `theirs` threads by one with
// `mine`, gives a thread back in exchange: when taking alone would leave this CPU more than one
// thread busier than that one. (Taking alone from a CPU one thread lighter would leave a
// difference of three, from 3 and 2 threads to 4 and 1, until the next balancing.)
inline bool steal_swaps(uint32_t theirs, uint32_t mine, uint64_t below_round) {
    return below_round != kAnyRound && mine + 1 > theirs;
}

// Whether CPU `self` may take queued thread `t` in a steal for threads below `below_round`:
// its affinity allows it, it is behind that round, and its old CPU has finished switching away
// from it.
inline bool may_take(const Thread& t, uint32_t self, uint64_t below_round) {
    return (t.affinity == kAnyCpu || t.affinity == self) && t.round < below_round &&
           !atomic::load<atomic::acquire>(&t.on_cpu);
}

// Of two threads a steal may take, whether `t` is the better one than `best` (null: none yet):
// the one furthest behind, having used the fewest slices, so that the CPU with fewer threads
// pulls the threads that have had the least CPU time.
inline bool steals_before(const Thread& t, const Thread* best) {
    return best == nullptr || t.round < best->round;
}

// --- Timers. ---

inline constexpr uint64_t kNever = ~uint64_t{0};

// Whether a sleeper with deadline `wake_at` is due at `now`: it wakes at the first tick at or
// after its deadline, never before.
inline bool sleeper_due(uint64_t wake_at, uint64_t now) {
    return wake_at <= now;
}

// What a CPU's one-shot timer must fire for, at `now`: its first sleeper's deadline
// (`first_wake_at`, kNever if none) and, while a thread other than the idle one runs, the next
// tick, whichever comes first. An idle CPU takes no ticks.
inline uint64_t timer_due(uint64_t now, uint64_t first_wake_at, bool thread_runs,
                          uint64_t tick_ns) {
    uint64_t due = first_wake_at;
    if (thread_runs) {
        uint64_t tick = now + tick_ns;
        due = tick < due ? tick : due;
    }
    return due;
}

// Whether a timer armed for `armed` may stay as it is when it is due for `due`: it is still
// ahead and not late for `due`, and it is exactly `due` on an idle CPU (which must not wake
// for a tick it does not need). A tick armed for a little earlier than asked stays: the tick
// must come at least that often, not at exactly that time.
inline bool timer_stays(uint64_t armed, uint64_t now, uint64_t due, bool thread_runs) {
    return armed > now && armed <= due && (thread_runs || armed == due);
}

} // namespace core::sched::policy
