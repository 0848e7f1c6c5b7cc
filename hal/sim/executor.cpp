// The executor: one host thread runs all the CPUs, always resuming the one whose virtual clock
// is furthest behind (a min-heap of CPUs by ready time, ties broken by the schedule's seeded
// generator) until its next preemption point: cpu_relax(), cpu_work(), a context switch or a
// wait for an interrupt. An idle CPU is ready at its next timer or IPI (interrupts.cpp).

#include "executor.hpp"
#include "host_faults.hpp"

#include <hal_sim/machine.hpp>
#include <hal_sim/race.hpp>
#include <hal_sim/seconds.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace hal_sim {

namespace {

std::string mebibytes(uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
    return buf;
}

} // namespace

bool Machine::step() {
    if (m_stopped) {
        return false;
    }
    if (!m_powered) {
        power_on();
    }
    if (m_heap.empty()) {
        stop(Verdict::Deadlock, "no CPU can run and no interrupt is pending\n" + describe_cpus());
        return false;
    }
    // NOTE: the CPU stays in the heap while it runs (no other CPU's ready time changes but
    // through update_next_event, which leaves the running CPU alone); it is re-sifted after.
    SimCpu* cpu = m_heap.front().cpu;
    uint64_t ready = ready_time(*cpu);
    if (ready >= m_config.stop_at_ns) {
        stop(Verdict::Success, "the run reached its end time");
        return false;
    }
    if (ready > m_config.time_limit_ns) {
        stop(Verdict::TimeLimit,
             "virtual time passed " + seconds(m_config.time_limit_ns) + " s\n" + describe_cpus());
        return false;
    }
    if (uint8_t limit = __atomic_load_n(&m_limit_reached, __ATOMIC_ACQUIRE);
        limit != kNoLimitReached) [[unlikely]] {
        if (limit == kTimeLimitReached) {
            stop(Verdict::Timeout, "the run used its " + seconds(m_config.host_time_limit_ns) +
                                       " s of host CPU time (--timeout); virtual time had "
                                       "reached " +
                                       seconds(ready) + " s\n" + describe_cpus());
        } else {
            stop(Verdict::OutOfMemory, "the simulator's resident memory reached " +
                                           mebibytes(m_rss_at_limit) + ", over its limit of " +
                                           mebibytes(m_config.host_memory_limit_bytes) +
                                           " (--memory-limit); virtual time had reached " +
                                           seconds(ready) + " s\n" + describe_cpus());
        }
        return false;
    }
    if (cpu->state == SimCpu::State::Idle) {
        if (cpu->next_event_ns > cpu->clock_ns) {
            cpu->idle_ns += cpu->next_event_ns - cpu->clock_ns;
            cpu->clock_ns = cpu->next_event_ns;
        }
        cpu->state = SimCpu::State::Running;
    }
    s_current = this;
    m_current = cpu;
    g_current_cpu = cpu;
    m_first_until = 0; // still_first() was about another CPU
    __atomic_store_n(&m_steps, m_steps + 1, __ATOMIC_RELAXED); // the watchdog reads it
    ++cpu->steps;
    g_sync_points = m_config.schedule.stops_at_sync_points();
    fctx::transfer_t back = jump(cpu->resume, nullptr, cpu->stack(), false, Entry::Across);
    if (back.data != &g_host_fault_marker) {
        cpu->resume = back.fctx;
    }
    g_sync_points = false; // the executor's own calls into the core (invariants) never stop
    m_current = nullptr;
    g_current_cpu = nullptr;
    s_current = nullptr;
    if (m_stopped) {
        m_com1.flush();
        return false;
    }
    if (cpu->state == SimCpu::State::Running ||
        (cpu->state == SimCpu::State::Idle && cpu->next_event_ns != SimCpu::kNever)) {
        // A tie can only be broken between two CPUs: a lone one keeps its place for free.
        if (m_heap.size() > 1) {
            cpu->tie_break = m_schedule_rng.next();
            heap_update(*cpu);
        } else {
            m_heap.front().ready = ready_time(*cpu);
        }
    } else {
        heap_remove(*cpu);
    }
#ifdef DUET_DEBUG
    for (size_t i = 0; i < m_heap.size(); ++i) {
        const HeapEntry& e = m_heap[i];
        if ((i > 0 && heap_less(e, m_heap[(i - 1) / 2])) || heap_pos(*e.cpu) != int(i) ||
            e.ready != ready_time(*e.cpu) || e.tie_break != e.cpu->tie_break) {
            std::fputs("duet: executor heap corrupt\n", stderr);
            std::abort();
        }
    }
#endif
    if (m_config.check_every != 0 && m_steps >= m_next_check && !check_invariants(cpu)) {
        m_com1.flush();
        return false;
    }
    if (!m_heap.empty()) {
        // NOTE: the next step resumes this CPU where its fiber saved its registers, on a stack
        // that other CPUs' steps have pushed out of the cache: start loading it now.
        __builtin_prefetch(m_heap.front().cpu->resume);
    }
    return true;
}

// --- On the CPU fibers: preemption points. ---

TimeBreak g_time_break;

__attribute__((noinline)) void time_break_reached(uint32_t cpu, uint64_t ns) {
    // NOTE: a side effect the compiler must keep, so that the call and its arguments stay.
    asm volatile("" : : "r"(cpu), "r"(ns) : "memory");
}

bool Machine::time_break_due(const SimCpu& c, uint64_t clock) {
    return clock >= g_time_break.ns &&
           (g_time_break.cpu == TimeBreak::kAnyCpu || g_time_break.cpu == c.index);
}

void Machine::reach_time_break(const SimCpu& c) {
    g_time_break = TimeBreak{}; // once
    time_break_reached(c.index, c.clock_ns);
}

void Machine::preemption_point() {
    if (m_borrowed) {
        std::fputs("duet: a preemption point was reached under a CpuScope (outside run())\n",
                   stderr);
        std::abort();
    }
    if (time_break_due(*m_current, m_current->clock_ns)) [[unlikely]] {
        reach_time_break(*m_current);
    }
    fctx::transfer_t back =
        jump(m_current->executor, nullptr, m_executor_stack, false, Entry::Across);
    SimCpu& c = *m_current;
    c.executor = back.fctx;
    if (c.irq_enabled && c.next_event_ns <= c.clock_ns) [[unlikely]] {
        deliver_pending();
    }
}

void Machine::cpu_relax() {
    SimCpu& c = *m_current;
    c.clock_ns += m_config.costs.relax;
    if (!c.spinning) {
        c.spinning = true;
        c.spin_since_ns = c.clock_ns - m_config.costs.relax;
    } else if (c.clock_ns - c.spin_since_ns > m_config.livelock_ns) {
        stop(Verdict::Livelock, "cpu " + std::to_string(c.index) + " spun for " +
                                    seconds(c.clock_ns - c.spin_since_ns) +
                                    " s without progress\n" + describe_cpus());
    }
    preemption_point();
}

void sync_point_now() {
    race::SimulatorCode sim;
    Machine::current()->sync_point();
}

void Machine::sync_point() {
    ++m_sync_points;
    SimCpu& c = *m_current;
    uint64_t stall = choose_stall(c);
    c.clock_ns += stall;
    if (stall != 0) {
        ++m_stalls;
        m_stall_ns += stall;
    }
    // Whether stalled or only ahead of another CPU since its last preemption point (its clock
    // moves on between them), the CPU lets those behind it go first: that is the interleaving
    // the point is for. Otherwise it goes on, taking what came due.
    if (!still_first(c)) {
        preemption_point();
    } else if (c.irq_enabled && c.next_event_ns <= c.clock_ns) {
        deliver_pending();
    }
}

namespace {

// A stall length log-uniform over powers of two in [min, max] (both powers of two): a power
// 2^k chosen uniformly, then a length uniform in [2^k, 2^(k+1)). Integer arithmetic only, so
// a seed means the same stalls on every host.
uint64_t log_uniform_stall(Rng& rng, uint64_t min, uint64_t max) {
    unsigned low = static_cast<unsigned>(__builtin_ctzll(min));
    unsigned high = static_cast<unsigned>(__builtin_ctzll(max));
    unsigned k = low + static_cast<unsigned>(rng.below(high - low + 1));
    uint64_t base = uint64_t{1} << k;
    return base + rng.below(base);
}

} // namespace

uint64_t Machine::choose_stall(const SimCpu& c) {
    const Schedule& s = m_config.schedule;
    if (s.kind == Schedule::Kind::Input) {
        return input_choices(c);
    }
    if (s.kind == Schedule::Kind::Random) {
        // Just long enough for the CPU next in time to act first, when it is near enough to
        // be racing this one: a stall that reorders nothing would only distort time.
        if (heap_pos(c) != 0 || m_heap.size() < 2 || !m_sync_rng.chance(s.stall_chance)) {
            return 0;
        }
        uint64_t next = heap_ready(1);
        if (m_heap.size() > 2) {
            next = std::min(next, heap_ready(2));
        }
        uint64_t gap = next > c.clock_ns ? next - c.clock_ns : 0;
        if (gap > Schedule::kMaxRaceGapNs) {
            return 0;
        }
        return gap + 1 + m_sync_rng.below(Schedule::kStallJitterNs);
    }
    // pct: a long stall at each change point (several may fall on one), unless no other CPU
    // could run meanwhile: then the change point lowers the priority of the only candidate,
    // which changes nothing.
    uint64_t stall = 0;
    while (m_next_change < m_change_points.size() &&
           m_change_points[m_next_change] == m_sync_points) {
        ++m_next_change;
        if (m_heap.size() >= 2) {
            stall +=
                log_uniform_stall(m_sync_rng, Schedule::kMinLongStallNs, Schedule::kMaxLongStallNs);
        }
    }
    return stall;
}

uint64_t Machine::next_other_ready(const SimCpu& c) const {
    uint64_t next = SimCpu::kNever;
    // The heap's front, or if that is `c`, the smaller of its children.
    for (size_t i = 0; i < std::min<size_t>(m_heap.size(), 3); ++i) {
        if (m_heap[i].cpu != &c && (i == 0 || m_heap[0].cpu == &c)) {
            next = std::min(next, heap_ready(i));
        }
    }
    return next;
}

uint64_t Machine::input_choices(const SimCpu& c) {
    // Only points where another CPU could run count: a lone CPU's (the boot's, before the
    // others are started, is most of a run's) offer no choice.
    if (m_heap.size() < 2) {
        return 0;
    }
    ++m_input_points;
    uint64_t stall = 0;
    while (m_next_choice && m_next_choice->at <= m_input_points) {
        const InputChoice& choice = *m_next_choice;
        switch (choice.kind) {
        case InputChoice::Kind::RaceStall: {
            uint64_t now = c.clock_ns + stall;
            uint64_t next = next_other_ready(c);
            uint64_t gap = next > now ? next - now : 0;
            if (gap <= Schedule::kMaxRaceGapNs) {
                stall += gap + 1 + choice.ns;
            }
            break;
        }
        case InputChoice::Kind::LongStall:
            stall += choice.ns;
            break;
        case InputChoice::Kind::TimerLatency:
            m_armed.timer_latency_ns = choice.ns;
            break;
        case InputChoice::Kind::Fault:
            switch (choice.fault) {
            case InputFault::FrameAlloc:
                m_armed.frame_alloc = true;
                break;
            case InputFault::HeapAlloc:
                m_armed.heap_alloc = true;
                break;
            case InputFault::TimerLate:
                m_armed.timer_late = true;
                m_armed.timer_late_ns = choice.ns;
                break;
            case InputFault::IpiDelay:
                m_armed.ipi_delay = true;
                m_armed.ipi_delay_ns = choice.ns;
                break;
            case InputFault::IpiDuplicate:
                m_armed.ipi_duplicate = true;
                break;
            }
            break;
        }
        m_next_choice = m_input.next();
    }
    return stall;
}

void Machine::cpu_work(uint64_t ns) {
    uint64_t remaining = ns;
    do {
        SimCpu& c = *m_current;
        c.spinning = false;
        uint64_t chunk = remaining;
        if (c.irq_enabled && c.next_event_ns != SimCpu::kNever) {
            chunk =
                c.next_event_ns > c.clock_ns ? std::min(chunk, c.next_event_ns - c.clock_ns) : 0;
        }
        if (time_break_due(c, c.clock_ns + chunk)) [[unlikely]] {
            // The debugger's stop comes at its time, inside the piece of work rather than at
            // its end; no preemption point there, so the run goes on as it would have.
            uint64_t before = g_time_break.ns > c.clock_ns ? g_time_break.ns - c.clock_ns : 0;
            c.clock_ns += before;
            chunk -= before;
            remaining -= before;
            reach_time_break(c);
        }
        c.clock_ns += chunk;
        remaining -= chunk;
        preemption_point();
    } while (remaining > 0);
}

// --- Bookkeeping: when each CPU is next ready. ---

void Machine::update_next_event(SimCpu& c) {
    uint64_t next = c.timer_deadline_ns;
    if (!c.ipis.empty()) {
        next = std::min(next, c.ipis.front().at_ns);
    }
    c.next_event_ns = next;
    if (c.state == SimCpu::State::Idle && &c != m_current) {
        if (next == SimCpu::kNever) {
            heap_remove(c);
        } else {
            heap_update(c);
        }
    }
}

// The running CPU's clock moves without the heap knowing: enter it before the heap compares
// it with another CPU.
void Machine::refresh_running_key() {
    if (m_current != nullptr) {
        if (int pos = heap_pos(*m_current); pos >= 0) {
            m_heap[static_cast<size_t>(pos)].ready = ready_time(*m_current);
        }
    }
}

bool Machine::heap_less(const HeapEntry& a, const HeapEntry& b) {
    if (a.ready != b.ready) {
        return a.ready < b.ready;
    }
    if (a.tie_break != b.tie_break) {
        return a.tie_break < b.tie_break;
    }
    return a.index < b.index;
}

// Both sifts carry the entry along and move the others into the hole it leaves, one copy a
// level instead of a swap.
void Machine::heap_place(size_t i, const HeapEntry& e) {
    m_heap[i] = e;
    m_heap_pos[e.index] = static_cast<int>(i);
}

void Machine::heap_sift_up(size_t i) {
    HeapEntry moving = m_heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(moving, m_heap[parent])) {
            break;
        }
        heap_place(i, m_heap[parent]);
        i = parent;
    }
    heap_place(i, moving);
}

void Machine::heap_sift_down(size_t i) {
    HeapEntry moving = m_heap[i];
    size_t n = m_heap.size();
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) {
            break;
        }
        if (child + 1 < n && heap_less(m_heap[child + 1], m_heap[child])) {
            ++child;
        }
        if (!heap_less(m_heap[child], moving)) {
            break;
        }
        heap_place(i, m_heap[child]);
        i = child;
    }
    heap_place(i, moving);
}

void Machine::heap_update(SimCpu& c) {
    m_first_until = 0;
    refresh_running_key();
    int pos = heap_pos(c);
    if (pos < 0) {
        pos = static_cast<int>(m_heap.size());
        m_heap_pos[c.index] = pos;
        m_heap.push_back(HeapEntry{.ready = 0, .tie_break = 0, .index = c.index, .cpu = &c});
    }
    HeapEntry& e = m_heap[static_cast<size_t>(pos)];
    e.ready = ready_time(c);
    e.tie_break = c.tie_break;
    heap_sift_up(static_cast<size_t>(pos));
    heap_sift_down(static_cast<size_t>(heap_pos(c)));
}

void Machine::heap_remove(SimCpu& c) {
    int pos = heap_pos(c);
    if (pos < 0) {
        return;
    }
    m_first_until = 0;
    refresh_running_key();
    size_t i = static_cast<size_t>(pos);
    HeapEntry last = m_heap.back();
    m_heap.pop_back();
    m_heap_pos[c.index] = -1;
    if (i < m_heap.size()) {
        heap_place(i, last);
        heap_sift_up(i);
        heap_sift_down(i);
    }
}

} // namespace hal_sim
