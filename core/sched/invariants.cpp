// The scheduler's invariants, which the simulator checks between executor steps: the run
// queues against themselves and the thread states, the sleepers' order, and each running
// thread against its CPU (core/invariants.hpp lists them).

#include "internal.hpp"

#include <core/invariants.hpp>

namespace core::sched {

using namespace detail;

namespace {

const char* state_name(ThreadState s) {
    switch (s) {
    case ThreadState::Free:
        return "free";
    case ThreadState::Runnable:
        return "runnable";
    case ThreadState::Running:
        return "running";
    case ThreadState::Blocked:
        return "blocked";
    case ThreadState::Exited:
        return "exited";
    }
    return "in no known state";
}

// "thread 7 'ping' ": how reports name a thread.
InvariantReport& name(InvariantReport& r, const Thread& t) {
    return r.add("thread ").add(t.number).add(" '").add(t.name).add("' ");
}

} // namespace

void check_invariants(InvariantReport& report) {
    if (g_cpu_count == 0) {
        return;
    }
    if (table_locked()) {
        report.skip();
        return;
    }
    for (uint32_t c = 0; c < g_cpu_count; ++c) {
        if (cpu(c).sched.lock.is_locked()) {
            report.skip();
            return;
        }
    }
    uint32_t slots = thread_slots();
    uint64_t queued = 0;
    for (uint32_t c = 0; c < g_cpu_count; ++c) {
        const CpuSched& cs = cpu(c).sched;
        for (const RunQueue& q : cs.queues) {
            if (const char* why = q.check()) {
                report.fail("run queues: cpu ").add(c).add(": ").add(why);
                return;
            }
            queued += q.count();
            for (unsigned level = 0; level < kPriorityLevels; ++level) {
                for (const RunLink* l = q.first(level); l != nullptr; l = l->next) {
                    const auto* t = reinterpret_cast<const Thread*>(l);
                    if (t->state != ThreadState::Runnable) {
                        name(report.fail("run queues: "), *t)
                            .add("is in cpu ")
                            .add(c)
                            .add("'s run queue but ")
                            .add(state_name(t->state));
                        return;
                    }
                }
            }
        }
        if (g_load_hints[c] != (uint64_t{cs.load()} << 32 | cs.queued())) {
            report.fail("run queues: cpu ").add(c).add("'s load hint is stale");
            return;
        }
        uint64_t previous = 0;
        uint64_t sleepers = 0;
        const Thread* last = nullptr;
        for (const Thread* t = cs.sleepers.first; t != nullptr; t = t->timer_next) {
            last = t;
            if (++sleepers > slots) {
                report.fail("timers: cpu ").add(c).add("'s sleepers form a cycle");
                return;
            }
            if (!t->in_timer || t->wake_at < previous || t->state != ThreadState::Blocked) {
                name(report.fail("timers: "), *t)
                    .add("is in cpu ")
                    .add(c)
                    .add("'s sleepers but ")
                    .add(t->state != ThreadState::Blocked ? state_name(t->state)
                                                          : "out of deadline order");
                return;
            }
            previous = t->wake_at;
        }
        if (cs.sleepers.last != last) {
            report.fail("timers: cpu ").add(c).add("'s last sleeper is not the list's last");
            return;
        }
    }
    report.did(slots + queued + g_cpu_count);
    uint64_t marked = 0;
    for (uint32_t slot = 1; slot < slots; ++slot) {
        const Thread* t = thread_at(slot);
        if (t == nullptr || t->idle) {
            continue;
        }
        ThreadState state = t->state;
        marked += t->link.queued ? 1 : 0;
        if (state == ThreadState::Runnable && !t->link.queued && !t->in_transit) {
            name(report.fail("run queues: "), *t).add("is runnable but in no run queue");
            return;
        }
        if (state != ThreadState::Runnable && t->link.queued) {
            name(report.fail("run queues: "), *t)
                .add("is ")
                .add(state_name(state))
                .add(" but queued on cpu ")
                .add(t->cpu);
            return;
        }
        if (state == ThreadState::Running &&
            (t->cpu >= g_cpu_count || cpu(t->cpu).sched.current != t)) {
            name(report.fail("run queues: "), *t)
                .add("is running but cpu ")
                .add(t->cpu)
                .add(" runs another thread");
            return;
        }
    }
    if (marked != queued) {
        report.fail("run queues: the queues hold ")
            .add(queued)
            .add(" threads but ")
            .add(marked)
            .add(" are marked as queued");
    }
}

} // namespace core::sched
