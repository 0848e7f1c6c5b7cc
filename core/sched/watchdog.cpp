// The watchdog: a machine that hangs says so and stops, instead of leaving QEMU to its
// timeout. Every quarter of the watchdog's period (Config::watchdog_ns), the first CPU whose
// timer interrupt finds the check due looks at every CPU and thread:
//   - a soft lockup: a CPU that is not idle and has neither taken a tick nor switched for a
//     whole period (it spins with interrupts off, on a lock nobody releases, say);
//   - a hung thread: one that has been runnable for a whole period without running (lost
//     from the run queues, or starved);
//   - a deadlock: every CPU idle, no sleeper anywhere (so no timer will wake anyone), and
//     threads waiting on mutexes or events, or processes' threads blocked (in IPC), at two
//     checks in a row: nothing can ever run again. The report says who waits for what
//     (core/sync/waits.hpp).
// It then logs what it found and every CPU's state, and panics. CPU 0 keeps its timer armed
// for the next check even when idle (idle CPUs have no tick otherwise), so a machine whose
// CPUs all went idle with a thread lost is noticed too.

#include "internal.hpp"

#include <core/lib/atomic.hpp>
#include <core/lib/line.hpp>
#include <core/lib/log.hpp>
#include <core/lib/panic.hpp>
#include <core/sync/waits.hpp>

#include <hal/race.hpp>
#include <hal/serial.hpp>

namespace core::sched {

using namespace detail;

namespace {

// The time of the next check (policy::kNever: off), and what the last checks saw of each CPU:
// its heartbeat (ticks + switches), and since when it has been the same. Only the CPU that
// claimed a check (a compare-and-swap on s_next) touches the latter.
uint64_t s_next = policy::kNever;
struct Seen {
    uint64_t heartbeat = 0;
    uint64_t since_ns = 0;
    bool valid = false;
};
Seen s_seen[kMaxCpus];
uint32_t s_quiet_checks = 0; // checks in a row that found the machine idle with threads waiting

// describe_waits()'s lines, each as a "watchdog: " line (longer than a LogLine holds).
void log_wait(const char* line, size_t length) {
    char text[300];
    LineBuffer out(text, sizeof text);
    out.str("watchdog: ");
    for (size_t i = 0; i < length; ++i) {
        out.chr(line[i]);
    }
    out.terminate('\n');
    hal::serial_write(text, out.length() + 1);
}

// Whether nothing can ever run again: every CPU idle, no sleeper, and threads waiting.
bool idle_with_waiters() {
    for (uint32_t i = 0; i < g_cpu_count; ++i) {
        const CpuSched& cs = cpu(i).sched;
        if (!policy::idle_in(g_idle_mask, i) || cs.queued() != 0 || cs.sleepers.first != nullptr) {
            return false;
        }
    }
    // A process's thread blocked outside a sleep waits in IPC (or for a page of its own):
    // with no CPU busy and no sleeper, nobody is left to answer it either.
    bool waiting = false;
    for_each_thread([&](const Thread& t) {
        waiting =
            waiting ||
            (t.state == ThreadState::Blocked &&
             (t.waiting_for_mutex != nullptr || t.waiting_for_event != nullptr || t.process != 0));
    });
    return waiting;
}

uint64_t period() {
    return g_config.watchdog_ns / 4 > 0 ? g_config.watchdog_ns / 4 : 1;
}

void log_cpu(uint32_t i) {
    const CpuSched& cs = cpu(i).sched;
    const Thread* running = cs.current;
    LogLine line("watchdog");
    line.str("cpu ").dec(i).str(": ");
    if (running == nullptr || running == cs.idle) {
        line.str("idle");
    } else {
        line.str("runs thread ").dec(running->number).str(" '").str(running->name).chr('\'');
    }
    line.str(", ")
        .dec(cs.queued())
        .str(" queued, ")
        .dec(cs.switches)
        .str(" switches, ")
        .dec(cs.ticks)
        .str(" ticks");
}

// Looks at every CPU and thread; true if something is stuck (then logged).
bool stuck(uint64_t now) {
    // NOTE: other CPUs' counters and threads, read without their locks on purpose: a hint a
    // whole period old cannot be a step off.
    hal::RacyReads racy;
    uint64_t limit = g_config.watchdog_ns;
    bool found = false;
    for (uint32_t i = 0; i < g_cpu_count; ++i) {
        const CpuSched& cs = cpu(i).sched;
        uint64_t heartbeat = cs.ticks + cs.switches;
        Seen& seen = s_seen[i];
        if (!seen.valid || heartbeat != seen.heartbeat || policy::idle_in(g_idle_mask, i) ||
            cs.current == nullptr) {
            seen = {heartbeat, now, true};
            continue;
        }
        if (now - seen.since_ns >= limit) {
            LogLine("watchdog")
                .str("cpu ")
                .dec(i)
                .str(" has neither taken a tick nor switched for ")
                .dec((now - seen.since_ns) / 1'000'000)
                .str(" ms (a soft lockup)");
            found = true;
        }
    }
    uint32_t hung = 0;
    for_each_thread([&](const Thread& t) {
        if (t.idle || t.state != ThreadState::Runnable || t.on_cpu ||
            now < t.runnable_since_ns + limit) {
            return;
        }
        if (++hung <= 8) {
            LogLine("watchdog")
                .str("thread ")
                .dec(t.number)
                .str(" '")
                .str(t.name)
                .str("' has been runnable for ")
                .dec((now - t.runnable_since_ns) / 1'000'000)
                .str(" ms without running (cpu ")
                .dec(t.cpu)
                .chr(')');
        }
    });
    if (hung > 8) {
        LogLine("watchdog").str("and ").dec(hung - 8).str(" more threads like it");
    }
    bool deadlock = false;
    if (idle_with_waiters()) {
        deadlock = ++s_quiet_checks >= 2;
    } else {
        s_quiet_checks = 0;
    }
    if (deadlock) {
        LogLine("watchdog").str("every CPU is idle and no timer is due, yet threads wait:");
        describe_waits([](const char* line, size_t length) { log_wait(line, length); });
    }
    if (found || hung > 0 || deadlock) {
        for (uint32_t i = 0; i < g_cpu_count; ++i) {
            log_cpu(i);
        }
        return true;
    }
    return false;
}

} // namespace

namespace detail {

void watchdog_start(uint64_t now) {
    if (g_config.watchdog_ns != 0) {
        atomic::store<atomic::relaxed>(&s_next, now + period());
    }
}

uint64_t watchdog_due(uint32_t cpu) {
    return cpu == 0 ? atomic::load<atomic::relaxed>(&s_next) : policy::kNever;
}

void watchdog_tick(uint64_t now) {
    uint64_t due = atomic::load<atomic::relaxed>(&s_next);
    if (now < due) [[likely]] {
        return;
    }
    // One CPU per check: the one that moves the next one on.
    if (!atomic::compare_exchange<atomic::acq_rel, atomic::relaxed>(&s_next, &due,
                                                                    now + period())) {
        return;
    }
    if (stuck(now)) {
        panic("watchdog: the machine is stuck (the watchdog lines above say where)");
    }
}

} // namespace detail

} // namespace core::sched
