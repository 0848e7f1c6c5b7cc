// Time on a CPU: its sleepers (sorted by deadline), its one-shot timer, armed for the first
// sleeper and, while a thread runs, the next tick; and the tick itself, which wakes the due
// sleepers, ends time slices and evens out the run queues.

#include "internal.hpp"

#include <hal/ipi.hpp>
#include <hal/time.hpp>

namespace core::sched {

using namespace detail;

namespace {

// Works out when the armed timer needs no change while a thread runs: the tick it is armed for
// is still ahead and at most a tick away, and no sleeper is due before it. That is the clocks
// [armed - tick, armed), or none if a sleeper is due first. Called whenever the armed time or
// the first sleeper changes (a first sleeper that only moves later may leave it too narrow:
// arm_timer() then takes the slow path, which calls this again).
void refit_timer(CpuSched& cs) {
    uint64_t armed = cs.timer_armed_for;
    if (cs.sleepers.first != nullptr && cs.sleepers.first->wake_at < armed) {
        cs.timer_fits_span = 0;
        return;
    }
    cs.timer_fits_from = armed > g_config.tick_ns ? armed - g_config.tick_ns : 0;
    cs.timer_fits_span = armed - cs.timer_fits_from;
}

} // namespace

namespace detail {

NOINLINE void arm_timer_slow(CpuSched& cs, uint64_t now) {
    const Thread* first = cs.sleepers.first;
    bool thread_runs = cs.current != cs.idle;
    // NOTE: the watchdog's next check counts as a sleeper on CPU 0, which thus wakes for it
    // even when idle.
    uint64_t first_at = first != nullptr ? first->wake_at : policy::kNever;
    uint64_t watch_at = watchdog_due(this_cpu().index);
    uint64_t due = policy::timer_due(now, watch_at < first_at ? watch_at : first_at, thread_runs,
                                     g_config.tick_ns);
    // NOTE: re-arming on every switch would put a HAL call on the switch path.
    if (policy::timer_stays(cs.timer_armed_for, now, due, thread_runs)) {
        refit_timer(cs);
        return;
    }
    if (due != cs.timer_armed_for) {
        cs.timer_armed_for = due;
        hal::timer_arm(due);
    }
    refit_timer(cs);
}

} // namespace detail

bool sleep_for(uint64_t ns, const bool* unless) {
    InterruptGuard irq;
    CpuSched& cs = this_cpu().sched;
    Thread* me = cs.current;
    uint64_t now = hal::now_ns();
    {
        auto guard = cs.lock.lock_irqsave();
        if (unless != nullptr && atomic::load<atomic::acquire>(unless)) {
            return false;
        }
        me->wake_at = now + ns;
        me->cpu_bound = false;
        // NOTE: the sleep's latency is measured from its deadline, not from the tick.
        me->woken = true;
        me->woken_at_ns = me->wake_at;
        if (cs.sleepers.insert(me)) {
            refit_timer(cs); // a new first sleeper
        }
        set_state(me, ThreadState::Blocked);
    }
    schedule();
    return true;
}

bool cancel_sleep(Thread* t) {
    for (;;) {
        uint32_t where = atomic::load<atomic::acquire>(&t->cpu);
        CpuSched& cs = cpu(where).sched;
        bool asleep = false;
        {
            auto guard = cs.lock.lock_irqsave();
            if (t->in_timer && t->cpu == where) {
                cs.sleepers.remove(t);
                // NOTE: its wake-up latency counts from now, not from the deadline it had.
                t->woken_at_ns = hal::now_ns();
                asleep = true;
            }
        }
        if (asleep) {
            wake(t);
            return true;
        }
        if (atomic::load<atomic::acquire>(&t->cpu) == where) {
            return false;
        }
    }
}

void on_tick() {
    Cpu* c = hal::this_cpu();
    if (c == nullptr || c->sched.current == nullptr) {
        return; // not scheduling on this CPU yet
    }
    uint32_t self = c->index;
    CpuSched& cs = c->sched;
    ++cs.irq_depth;
    ++cs.ticks;
    uint64_t now = hal::now_ns();
    watchdog_tick(now);
    for (;;) {
        Thread* due = nullptr;
        {
            auto guard = cs.lock.lock_irqsave();
            due = cs.sleepers.pop_due(now);
        }
        if (due == nullptr) {
            break;
        }
        wake(due);
    }
    Thread* running = cs.current;
    if (running != cs.idle) {
        if (now >= cs.slice_end) {
            // Its turn in this round is used up. A thread alone on its CPU first looks for
            // threads elsewhere that have not had this round's turn yet: they get it here.
            running->slice_used = true;
            if (cs.queued() == 0 && g_cpu_count > 1) {
                steal(self, 0, cs.round + 1);
            }
            auto guard = cs.lock.lock_irqsave();
            if (policy::slice_end_preempts(cs.active().top_priority(), cs.expired().top_priority(),
                                           static_cast<int>(running->link.priority))) {
                cs.set_need_resched(true);
                ++running->preemptions;
                ++cs.preemptions;
            } else {
                // Nobody to share with: the next round starts here with a new slice.
                running->slice_used = false;
                running->round = policy::next_round(running->round, cs.round);
                cs.round = running->round;
                cs.slice_end = now + slice_for(cs);
            }
        }
        if (cs.ticks % g_config.balance_ticks == 0) {
            steal(self, 2, policy::kAnyRound); // even out the number of threads
            if (cs.queued() != 0) {
                uint32_t idle = policy::idle_to_kick(self, g_cpu_count, g_idle_mask);
                if (idle != g_cpu_count) {
                    hal::send_ipi(idle, hal::IpiKind::Reschedule);
                }
            }
        }
    } else if (cs.queued() != 0) {
        cs.set_need_resched(true);
    }
    {
        auto guard = cs.lock.lock_irqsave();
        cs.timer_armed_for = policy::kNever - 1; // the one-shot timer has fired: re-arm
        cs.timer_fits_span = 0;
        arm_timer(cs, now);
    }
    --cs.irq_depth;
    if (cs.resched_needed()) {
        schedule();
    }
}

} // namespace core::sched
