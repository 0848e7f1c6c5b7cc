// Where runnable threads go: a woken or new thread to the CPU policy::place() picks, with an
// IPI when that CPU must reschedule; and stealing, by which a CPU short of threads takes them
// from others (those behind its round first, then from the busiest to even out the load).

#include "internal.hpp"

#include <core/lib/atomic.hpp>
#include <core/sched/trace.hpp>

#include <hal/cpu.hpp>
#include <hal/ipi.hpp>

namespace core::sched {

using namespace detail;

namespace detail {

uint32_t select_cpu(const Thread* t) {
    return policy::place(*t, this_cpu().index, g_cpu_count, g_idle_mask);
}

// Puts a runnable thread in `cpu`'s active queue (it joins that CPU's current round: time spent
// asleep earns no credit) and makes the CPU reschedule if it should: it is idle, or the thread
// outranks what it runs.
void enqueue(uint32_t target, Thread* t) {
    CpuSched& cs = cpu(target).sched;
    bool kick = false;
    {
        auto guard = cs.lock.lock_irqsave();
        t->round = policy::joining_round(t->round, cs.round);
        cs.note_queued(*t);
        cs.active().push_back(&t->link);
        publish_load(target, cs);
        t->in_transit = false;
        Thread* running = cs.current;
        bool idle = running == cs.idle || running == nullptr;
        kick = policy::wakeup_preempts(idle, t->link.priority,
                                       idle ? uint8_t{0} : running->link.priority);
        if (kick) {
            cs.set_need_resched(true);
        }
    }
    if (!kick) {
        return;
    }
    if (target == this_cpu().index) {
        return; // the caller reschedules at its next chance (preempt_if_needed or irq exit)
    }
    set_idle(target, false);
    hal::send_ipi(target, hal::IpiKind::Reschedule);
}

namespace {

// Under `mine`'s lock, after a steal from `source`: takes out of `mine`'s expired queue the
// thread furthest ahead (most slices used) that may run on `source`, to give it to `source`
// in exchange, or returns null if there is none.
Thread* give_back(CpuSched& mine, uint32_t source) {
    Thread* given = nullptr;
    RunQueue& q = mine.expired();
    for (unsigned level = 0; level < kPriorityLevels; ++level) {
        for (RunLink* l = q.first(level); l != nullptr; l = l->next) {
            auto* t = reinterpret_cast<Thread*>(l);
            if (policy::may_take(*t, source, policy::kAnyRound) &&
                (given == nullptr || t->round > given->round)) {
                given = t;
            }
        }
    }
    if (given != nullptr) {
        q.remove(&given->link);
        given->in_transit = true;
    }
    return given;
}

// Under `from`'s lock: the queued thread that `self` may take in a steal for threads below
// `below_round` that is furthest behind (the first of them in queue order), or null.
Thread* furthest_behind(CpuSched& from, uint32_t self, uint64_t below_round) {
    Thread* taken = nullptr;
    RunQueue* queues[] = {&from.active(), &from.expired()};
    for (RunQueue* q : queues) {
        for (unsigned level = 0; level < kPriorityLevels; ++level) {
            for (RunLink* l = q->first(level); l != nullptr; l = l->next) {
                auto* t = reinterpret_cast<Thread*>(l);
                if (policy::may_take(*t, self, below_round) && policy::steals_before(*t, taken)) {
                    if (t->round == from.round_floor) {
                        return t; // none can be further behind
                    }
                    taken = t;
                }
            }
        }
    }
    return taken;
}

// A CPU to steal from and the load its hint gave.
struct Source {
    uint32_t cpu = kNoCpu;
    uint32_t load = 0;
};

// Gives `visit` each CPU in [from, to) but `self` that has threads queued, with its load, in
// order, until it returns true; returns whether it did. Each hint is loaded once, relaxed.
template <typename Visit>
ALWAYS_INLINE bool visit_queued(uint32_t self, uint32_t from, uint32_t to, Visit& visit) {
    hal::sync_point();
    for (uint32_t i = from; i < to; ++i) {
        uint64_t hint = atomic::load_hint(&g_load_hints[i]);
        if (static_cast<uint32_t>(hint) != 0 && i != self &&
            visit(i, static_cast<uint32_t>(hint >> 32))) {
            return true;
        }
    }
    return false;
}

// The busiest CPU with threads queued (the first found of those as busy, from CPU `start` on
// and round to `start` - 1), or none.
// NOTE: two plain ranges rather than one index that wraps by a compare, and the margin checked
// once after: 30% fewer instructions in steal() on 256 CPUs x 10,000 threads.
Source busiest(uint32_t self, uint32_t start) {
    Source best;
    auto visit = [&](uint32_t i, uint32_t n) {
        if (n > best.load) {
            best = {i, n};
        }
        return false;
    };
    visit_queued(self, start, g_cpu_count, visit);
    visit_queued(self, 0, start, visit);
    return best;
}

// The first CPU with threads queued (from `start` on, round to `start` - 1) that `self`, with
// `mine` threads, may steal from.
Source first_not_lighter(uint32_t self, uint32_t start, uint32_t mine, uint32_t margin,
                         uint64_t below_round) {
    Source found;
    auto visit = [&](uint32_t i, uint32_t n) {
        if (!policy::may_steal_from(n, mine, margin, below_round)) {
            return false;
        }
        found = {i, n};
        return true;
    };
    if (!visit_queued(self, start, g_cpu_count, visit)) {
        visit_queued(self, 0, start, visit);
    }
    return found;
}

} // namespace

// Takes a queued thread whose round is below `below_round` from another CPU into this one's
// active queue, choosing the thread furthest behind (fewest slices used). With
// `below_round` == kAnyRound it only takes from a CPU that has at least `margin` threads more
// than this one (the busiest); otherwise from whichever CPU has such a thread. Returns the CPU
// it took from, or kNoCpu. A steal of a thread behind the round from a CPU that is not busier
// than this one is an exchange: this CPU gives that one a thread that has had its turn, so the
// steal moves turns, not load. Takes one lock at a time.
uint32_t steal(uint32_t self, uint32_t margin, uint64_t below_round) {
    CpuSched& mine = cpu(self).sched;
    uint32_t mine_load = mine.load();
    // A different starting point each time, so that equally good candidates take turns.
    uint32_t start = static_cast<uint32_t>(++mine.balance_rounds % g_cpu_count);
    Source source = below_round == policy::kAnyRound
                        ? busiest(self, start)
                        : first_not_lighter(self, start, mine_load, margin, below_round);
    if (source.cpu == kNoCpu ||
        !policy::may_steal_from(source.load, mine_load, margin, below_round)) {
        return kNoCpu;
    }
    Thread* taken = nullptr;
    {
        CpuSched& from = cpu(source.cpu).sched;
        auto guard = from.lock.lock_irqsave();
        taken = furthest_behind(from, self, below_round);
        if (taken == nullptr) {
            return kNoCpu;
        }
        from.queues[taken->link.queue].remove(&taken->link);
        publish_load(source.cpu, from);
        taken->in_transit = true;
    }
    Thread* given = nullptr;
    {
        auto guard = mine.lock.lock_irqsave();
        taken->round = policy::joining_round(taken->round, mine.round);
        mine.note_queued(*taken);
        mine.active().push_back(&taken->link);
        taken->in_transit = false;
        ++mine.steals;
        if (policy::steal_swaps(source.load, mine_load, below_round)) {
            given = give_back(mine, source.cpu);
        }
        publish_load(self, mine);
    }
    if (given != nullptr) {
        CpuSched& to = cpu(source.cpu).sched;
        auto guard = to.lock.lock_irqsave();
        // It had its turn in this CPU's round: on the other CPU it waits for the next one.
        if (given->round > to.round) {
            to.note_queued(*given);
            to.expired().push_back(&given->link);
        } else {
            given->round = to.round;
            to.note_queued(*given);
            to.active().push_back(&given->link);
        }
        publish_load(source.cpu, to);
        given->in_transit = false;
    }
    return source.cpu;
}

} // namespace detail

bool wake(Thread* t) {
    ThreadState expected = ThreadState::Blocked;
    if (!atomic::compare_exchange<atomic::acq_rel, atomic::acquire>(&t->state, &expected,
                                                                    ThreadState::Runnable)) {
        return false;
    }
    t->in_transit = true;
    // It may still be switching away on its CPU: wait until its context is saved.
    while (atomic::load<atomic::acquire>(&t->on_cpu)) {
        hal::cpu_relax();
    }
    uint64_t now = hal::now_ns();
    if (!t->woken) {
        t->woken = true;
        t->woken_at_ns = now;
    }
    t->runnable_since_ns = now;
    ++t->wakeups;
    ++this_cpu().sched.wakeups;
    uint32_t target = select_cpu(t);
    if (g_config.trace) {
        trace::waking(*t, target);
    }
    enqueue(target, t);
    return true;
}

} // namespace core::sched
