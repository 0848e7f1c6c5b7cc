// Picking the next thread and switching to it: schedule(), yield(), preemption, and each CPU's
// idle loop. This is the switch path: everything it calls on the way is inline (internal.hpp)
// but stealing, the timer's slow path and tracing.

#include "internal.hpp"

#include <core/lib/atomic.hpp>
#include <core/lib/placement_new.hpp>
#include <core/mm/physical_memory.hpp>
#include <core/sched/trace.hpp>
#include <core/user/process.hpp>

#include <hal/context.hpp>
#include <hal/cpu.hpp>
#include <hal/irq.hpp>
#include <hal/mmu.hpp>

namespace core::sched {

using namespace detail;

namespace detail {

Config g_config;
uint32_t g_cpu_count = 0;
uint64_t g_idle_mask[kMaxCpus / 64];
uint64_t g_load_hints[kMaxCpus];
uint64_t g_slices[kSlicesKnown];

} // namespace detail

namespace {

// The thread whose context `ctx` is: every context the scheduler switches from is a thread's.
Thread* thread_of(hal::ArchContext& ctx) {
    static_assert(__is_standard_layout(Thread));
    return reinterpret_cast<Thread*>(reinterpret_cast<char*>(&ctx) - offsetof(Thread, context));
}

// Under the CPU's lock: the next thread to run, or null for the idle thread.
ALWAYS_INLINE Thread* pick_next(CpuSched& cs) {
    RunQueue* active = &cs.active();
    RunQueue* expired = &cs.expired();
    if (policy::round_ends(*active, *expired)) {
        // Lower-priority threads still in the active queue keep their turn: they go along.
        while (RunLink* l = active->pop()) {
            expired->push_back(l);
        }
        cs.active_queue = expired;
        cs.expired_queue = active;
        ++cs.round;
        active = expired;
    }
    return reinterpret_cast<Thread*>(active->pop());
}

// schedule(); `yielded`: the calling thread gives up the rest of its turn in the round;
// `direct`: handoff()'s thread, which runs next in the rest of this time slice.
// NOTE: inlined into schedule(), yield() and handoff(), the switch path's callers.
ALWAYS_INLINE void reschedule(bool yielded, Thread* direct) {
    // NOTE: interrupts must be off: lock_irqs_off() below asserts it.
    Cpu& me = this_cpu();
    CpuSched& cs = me.sched;
    Thread* prev = cs.current;
    // Out of threads for this round: first take those that other CPUs have not yet given a
    // turn in it (before taking this CPU's lock: one lock at a time).
    if (direct == nullptr && g_cpu_count > 1 && cs.active().empty()) {
        steal(me.index, 0, cs.round + 1);
    }
    Thread* next = nullptr;
    uint64_t now = hal::now_ns();
    bool requeued = false;
    {
        // NOTE: no spinlock may be held across a switch: lock_irqs_off() asserts that this is
        // the only one held, and it is released before the switch.
        auto guard = cs.lock.lock_irqs_off();
        cs.set_need_resched(false);
        if (!prev->idle) {
            prev->run_ns += now - prev->last_in_ns;
            if (state_of(prev) == ThreadState::Running) {
                requeued = true;
                set_state(prev, ThreadState::Runnable);
                prev->runnable_since_ns = now;
                switch (policy::requeue(yielded, prev->slice_used)) {
                case policy::Requeue::BackOfExpired:
                    prev->slice_used = false;
                    prev->round = policy::next_round(prev->round, cs.round);
                    cs.note_queued(*prev);
                    cs.expired().push_back(&prev->link);
                    break;
                case policy::Requeue::FrontOfActive:
                    cs.note_queued(*prev);
                    cs.active().push_front(&prev->link);
                    break;
                }
            }
        }
        next = direct != nullptr ? direct : pick_next(cs);
        if (next == nullptr) {
            next = cs.idle;
        }
        if (next == prev) {
            set_state(prev, ThreadState::Running);
            prev->last_in_ns = now;
            cs.slice_end = now + slice_for(cs);
            arm_timer(cs, now);
            return;
        }
        set_state(next, ThreadState::Running);
        atomic::store<atomic::release>(&next->on_cpu, true);
        next->last_in_ns = now;
        if (!next->idle) {
            uint64_t delay = now > next->runnable_since_ns ? now - next->runnable_since_ns : 0;
            next->run_delay_ns += delay;
            CpuHistograms& histograms = *cs.histograms;
            histograms.run_delay.record(delay);
            if (next->woken) {
                next->woken = false;
                histograms.wakeup_latency.record(now > next->woken_at_ns ? now - next->woken_at_ns
                                                                         : 0);
            }
            if (next->cpu != me.index || next->switches_in == 0) [[unlikely]] {
                // A thread's first run is a placement, not a migration.
                if (next->switches_in > 0) {
                    ++next->migrations;
                    ++cs.migrations;
                }
                // This CPU may still cache another stack in the slot of this one's (unless it
                // flushed this one already: a kept stack it freed, or one it allocated).
                mm::kernel_space().flush_stack(next->stack);
            }
            ++next->switches_in;
        }
        next->cpu = me.index;
        cs.set_current(next);
        // NOTE: a thread queued again for one taken from the queue leaves the load as it was.
        if (!requeued) {
            publish_load(me.index, cs);
        }
        cs.prev = prev;
        if (direct == nullptr) {
            cs.slice_end = now + slice_for(cs);
        } else {
            // The caller's time slice goes on with the thread it handed its CPU to.
            direct->in_transit = false;
            ++cs.handoffs;
        }
        ++cs.switches;
        arm_timer(cs, now);
    }
    // NOTE: the idle bit changes only when the idle thread comes or goes; a hint left wrong by
    // a race (see set_idle) is put right by this CPU's next switch to or from its idle thread.
    if (prev->idle != next->idle) {
        set_idle(me.index, next->idle);
    }
    if (g_config.trace) {
        trace::switched(*prev, *next);
    }
    // A user thread runs in its process's address space; a kernel thread after one in the
    // kernel's, so that a dead process's tables are loaded nowhere once its thread is gone.
    if (next->process != 0 || me.user_pml4 != hal::PhysAddr()) [[unlikely]] {
        user::switch_to(me, *next);
    }
    finish_switch(thread_of(hal::context_switch(prev->context, next->context)));
}

} // namespace

void init(const Config& config, uint32_t cpus) {
    g_config = config;
    g_cpu_count = cpus;
    watchdog_start(hal::now_ns());
    for (uint32_t n = 1; n < kSlicesKnown; ++n) {
        g_slices[n] = policy::slice_among(n, config.slice_ns, config.tick_ns);
    }
    for (uint32_t c = 0; c < cpus; ++c) {
        auto frames = mm::frames().alloc({.order = kStackOrder,
                                          .align = 0,
                                          .owner = mm::FrameOwner::Kernel,
                                          .injectable = false});
        if (!frames.ok()) {
            panic_error("allocating the scheduler's statistics", frames.error());
        }
        CpuSched& cs = cpu(c).sched;
        cs.active_queue = &cs.queues[0];
        cs.expired_queue = &cs.queues[1];
        cs.histograms = new (hal::phys_to_virt(frames.value())) CpuHistograms();
    }
}

Thread* current() {
    // NOTE: null, not a fault, on a CPU without per-CPU data: fault reports ask from anywhere.
    Cpu* c = hal::this_cpu();
    return c != nullptr ? c->sched.current : nullptr;
}

void schedule() {
    reschedule(false, nullptr);
}

void yield() {
    InterruptGuard irq;
    // Giving the CPU away ends this thread's turn in the round.
    reschedule(true, nullptr);
}

void mark_blocked() {
    Thread* me = this_cpu().sched.current;
    me->cpu_bound = false;
    set_state(me, ThreadState::Blocked);
}

bool handoff(Thread* to) {
    Cpu& me = this_cpu();
    ThreadState expected = ThreadState::Blocked;
    if ((to->affinity != kAnyCpu && to->affinity != me.index) ||
        !atomic::compare_exchange<atomic::acq_rel, atomic::acquire>(&to->state, &expected,
                                                                    ThreadState::Runnable)) {
        wake(to);
        reschedule(false, nullptr);
        return false;
    }
    to->in_transit = true;
    // It may still be switching away on its CPU: wait until its context is saved.
    while (atomic::load<atomic::acquire>(&to->on_cpu)) {
        hal::cpu_relax();
    }
    to->runnable_since_ns = hal::now_ns();
    ++to->wakeups;
    ++me.sched.wakeups;
    if (g_config.trace) {
        trace::waking(*to, me.index);
    }
    reschedule(false, to);
    return true;
}

// Runs a pending reschedule now if the calling context may switch (not inside an interrupt).
void preempt_if_needed() {
    CpuSched& cs = this_cpu().sched;
    if (cs.resched_needed() && cs.irq_depth == 0 && cs.current != nullptr) {
        InterruptGuard irq;
        schedule();
    }
}

void on_reschedule_ipi() {
    Cpu* c = hal::this_cpu();
    if (c == nullptr || c->sched.current == nullptr) {
        return;
    }
    c->sched.set_need_resched(true);
    schedule();
}

void run_cpu() {
    Cpu& me = this_cpu();
    CpuSched& cs = me.sched;
    auto idle = alloc_slot(false, nullptr);
    if (!idle.ok()) {
        panic_error("allocating an idle thread", idle.error());
    }
    Thread* t = idle.value();
    t->idle = true;
    t->cpu = me.index;
    t->affinity = me.index;
    t->link.priority = 0;
    const char kIdle[] = "idle";
    for (size_t i = 0; i < sizeof kIdle; ++i) {
        t->name[i] = kIdle[i];
    }
    set_state(t, ThreadState::Running);
    t->on_cpu = true;
    {
        auto guard = cs.lock.lock_irqsave();
        atomic::store<atomic::relaxed>(&cs.idle, t); // load() reads it without the lock
        cs.set_current(t);
        publish_load(me.index, cs);
    }
    for (;;) {
        hal::IrqFlags flags = hal::irq_save();
        // NOTE: idle first, then look for threads: a thread placed from now on sees this CPU
        // idle and comes with an IPI; one placed elsewhere just before is found below, or
        // (placed once the look is over) fetched when that CPU's balancing kicks this one.
        set_idle(me.index, true);
        if (cs.queued() != 0 || steal(me.index, 1, policy::kAnyRound) != kNoCpu) {
            schedule();
        } else {
            {
                auto guard = cs.lock.lock_irqsave();
                arm_timer(cs, hal::now_ns());
            }
            // Interrupts are off from the check to here, and wait_for_interrupt() enables
            // them atomically with the wait: a wake-up that lands in between is not lost.
            hal::wait_for_interrupt();
        }
        hal::irq_restore(flags);
    }
}

uint32_t cpu_count() {
    return g_cpu_count;
}

} // namespace core::sched
