#include <core/cpu.hpp>
#include <core/invariants.hpp>
#include <core/lib/compiler.hpp>
#include <core/lib/log.hpp>
#include <core/lib/panic.hpp>
#include <core/lib/placement_new.hpp>
#include <core/mm/kernel_space.hpp>
#include <core/mm/physical_memory.hpp>
#include <core/sched/scheduler.hpp>
#include <core/sched/trace.hpp>

#include <hal/context.hpp>
#include <hal/cpu.hpp>
#include <hal/ipi.hpp>
#include <hal/irq.hpp>
#include <hal/mmu.hpp>
#include <hal/time.hpp>

#include <stddef.h>

namespace core::sched {

namespace {

// --- Per-CPU state. ---
//
// Fairness across CPUs comes from rounds (after distributed weighted round-robin): a thread's
// `round` counts the time slices it has used up. Each CPU serves its `round`: threads that
// still have a slice to use in it wait in the active queue, those that used theirs wait in
// the expired queue for the next round. When a CPU runs out of active threads it first takes
// threads from other CPUs that are behind its round, and only then moves to the next round.
// So a CPU with fewer threads pulls the threads that have had the least CPU time, whichever
// queue they wait in, and every thread gets about one slice per round however the threads
// are spread.

struct CpuHistograms;

// NOTE: 512 bytes, a power of two: the switch path finds its CPU's entry with one shift.
struct alignas(512) CpuSched {
    SpinLock lock{"runqueue", LockRank::RunQueue}; // the run queues and the sleepers
    uint32_t index = 0;                            // its CPU's, from init()
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
    bool need_resched = false;
    Thread* sleepers = nullptr; // sorted by wake_at
    uint64_t timer_armed_for = ~uint64_t{0};
    // While a thread runs, the armed timer serves as it is at the clocks [timer_fits_from,
    // timer_fits_from + timer_fits_span) (see refit_timer()); a span of 0: at none.
    uint64_t timer_fits_from = 0;
    uint64_t timer_fits_span = 0;
    uint64_t balance_rounds = 0;
    // Counters (this CPU only writes them).
    uint64_t switches = 0;
    uint64_t preemptions = 0;
    uint64_t migrations = 0;
    uint64_t wakeups = 0;
    uint64_t steals = 0;
    CpuHistograms* histograms = nullptr; // run delays and wake-up latencies, from init()

    RunQueue& active() { return *active_queue; }
    RunQueue& expired() { return *expired_queue; }
    const RunQueue& active() const { return *active_queue; }
    const RunQueue& expired() const { return *expired_queue; }
    // May be read without the lock, as a hint.
    uint32_t queued() const { return queues[0].count() + queues[1].count(); }
};

CpuSched s_cpus[kMaxCpus];
uint32_t s_cpu_count = 0;
Config s_config;
// Bit i: CPU i runs its idle thread with an empty queue. A hint for placing wake-ups.
uint64_t s_idle_mask[kMaxCpus / 64];

constexpr uint32_t kNoCpu = ~0u;
constexpr uint64_t kAnyRound = ~uint64_t{0};

CpuSched& mine() {
    return s_cpus[hal::cpu_index()];
}
uint32_t my_index() {
    return hal::cpu_index();
}

ALWAYS_INLINE void set_idle(uint32_t cpu, bool idle) {
    uint64_t bit = uint64_t{1} << (cpu % 64);
    // NOTE: most switches leave the bit as it is: a plain load spares them a locked
    // read-modify-write. A stale answer costs a needless update, or leaves the hint wrong
    // until this CPU's next switch, as racing with another CPU's update could anyway.
    if (((__atomic_load_n(&s_idle_mask[cpu / 64], __ATOMIC_RELAXED) & bit) != 0) == idle) {
        return;
    }
    if (idle) {
        __atomic_fetch_or(&s_idle_mask[cpu / 64], bit, __ATOMIC_RELAXED);
    } else {
        __atomic_fetch_and(&s_idle_mask[cpu / 64], ~bit, __ATOMIC_RELAXED);
    }
}

bool is_idle(uint32_t cpu) {
    return (__atomic_load_n(&s_idle_mask[cpu / 64], __ATOMIC_RELAXED) >> (cpu % 64)) & 1;
}

// --- The thread table: slots in chunks of frames, indexed by slot number. ---

constexpr unsigned kChunkOrder = 4; // 64 KiB of Thread slots per chunk
constexpr uint32_t kSlotsPerChunk = static_cast<uint32_t>((4096u << kChunkOrder) / sizeof(Thread));
constexpr uint32_t kMaxChunks = 4096;

SpinLock s_table_lock("thread.table", LockRank::ThreadTable);
Thread* s_chunks[kMaxChunks];
uint32_t s_slots = 1; // slot 0 is never used: ThreadId 0 means "no thread"
Thread* s_free_slots = nullptr;

// Jain's index accumulators for CPU-bound threads that have exited.
SpinLock s_stats_lock("sched.stats", LockRank::SchedStats);
// NOTE: integers only: the kernel is built without floating point.
uint64_t s_fair_sum = 0;
uint64_t s_fair_sum_sq = 0;
uint64_t s_fair_n = 0;
uint64_t s_threads_created = 0;
uint64_t s_threads_exited = 0;
uint64_t s_spawn_failures = 0;
// Per CPU (CpuSched::histograms), in frames allocated by init(): too big for the kernel image's
// bss.
struct CpuHistograms {
    Histogram run_delay;
    Histogram wakeup_latency;
};
static_assert(sizeof(CpuHistograms) <= (size_t{4096} << kStackOrder));

Thread* slot_address(uint32_t slot) {
    Thread* chunk = s_chunks[slot / kSlotsPerChunk];
    return chunk == nullptr ? nullptr : chunk + slot % kSlotsPerChunk;
}

Result<Thread*> alloc_slot(bool injectable) {
    auto guard = s_table_lock.lock_irqsave();
    if (s_free_slots == nullptr) {
        if (s_slots / kSlotsPerChunk >= kMaxChunks) {
            return Error::OutOfMemory;
        }
        if (s_chunks[s_slots / kSlotsPerChunk] == nullptr) {
            hal::PhysAddr pa = TRY(mm::frames().alloc({.order = kChunkOrder,
                                                       .align = 0,
                                                       .owner = mm::FrameOwner::Kernel,
                                                       .injectable = injectable}));
            auto* chunk = static_cast<Thread*>(hal::phys_to_virt(pa));
            for (uint32_t i = 0; i < kSlotsPerChunk; ++i) {
                new (chunk + i) Thread();
            }
            s_chunks[s_slots / kSlotsPerChunk] = chunk;
        }
        Thread* t = slot_address(s_slots);
        t->id.value = s_slots;
        ++s_slots;
        t->free_next = s_free_slots;
        s_free_slots = t;
    }
    Thread* t = s_free_slots;
    s_free_slots = t->free_next;
    // The generation lives in the high half of the id and survives the slot's reuse.
    uint32_t generation = t->id.generation() + 1;
    uint32_t slot = t->id.slot();
    t->~Thread();
    new (t) Thread();
    t->id.value = (uint64_t{generation} << 32) | slot;
    return t;
}

void free_slot(Thread* t) {
    auto guard = s_table_lock.lock_irqsave();
    __atomic_store_n(&t->state, ThreadState::Free, __ATOMIC_RELEASE);
    t->free_next = s_free_slots;
    s_free_slots = t;
}

ThreadState state_of(const Thread* t) {
    return __atomic_load_n(&t->state, __ATOMIC_ACQUIRE);
}

void set_state(Thread* t, ThreadState s) {
    __atomic_store_n(&t->state, s, __ATOMIC_RELEASE);
}

// --- Timers. ---

// Works out when the armed timer needs no change while a thread runs: the tick it is armed for
// is still ahead and at most a tick away, and no sleeper is due before it. That is the clocks
// [armed - tick, armed), or none if a sleeper is due first. Called whenever the armed time or
// the first sleeper changes (a first sleeper that only moves later may leave it too narrow:
// arm_timer() then takes the slow path, which calls this again).
void refit_timer(CpuSched& cs) {
    uint64_t armed = cs.timer_armed_for;
    if (cs.sleepers != nullptr && cs.sleepers->wake_at < armed) {
        cs.timer_fits_span = 0;
        return;
    }
    cs.timer_fits_from = armed > s_config.tick_ns ? armed - s_config.tick_ns : 0;
    cs.timer_fits_span = armed - cs.timer_fits_from;
}

NOINLINE void arm_timer_slow(CpuSched& cs, uint64_t now) {
    uint64_t deadline = ~uint64_t{0};
    if (cs.sleepers != nullptr) {
        deadline = cs.sleepers->wake_at;
    }
    if (cs.current != cs.idle) {
        uint64_t tick = now + s_config.tick_ns;
        deadline = tick < deadline ? tick : deadline;
    }
    // NOTE: a tick already armed for a little earlier than asked stays armed (the tick needs
    // to come at least that often, not at exactly that time): re-arming on every switch would
    // put a HAL call on the switch path.
    if (cs.timer_armed_for > now && cs.timer_armed_for <= deadline &&
        (cs.current != cs.idle || cs.timer_armed_for == deadline)) {
        refit_timer(cs);
        return;
    }
    if (deadline != cs.timer_armed_for) {
        cs.timer_armed_for = deadline;
        hal::timer_arm(deadline);
    }
    refit_timer(cs);
}

// Arms this CPU's timer for its next event: the first sleeper's deadline, and the next tick
// while a thread other than the idle one runs.
ALWAYS_INLINE void arm_timer(CpuSched& cs, uint64_t now) {
    // What nearly every switch finds (checked inline, as arm_timer_slow() would): a thread
    // runs and the timer is armed in time for both its tick and the first sleeper.
    if (!cs.current->idle && now - cs.timer_fits_from < cs.timer_fits_span) {
        return;
    }
    arm_timer_slow(cs, now);
}

void insert_sleeper(CpuSched& cs, Thread* t) {
    Thread** link = &cs.sleepers;
    // NOTE: sorted insertion is linear in this CPU's sleepers; sleepers spread over the CPUs
    // with the threads, and the head is all a tick needs.
    while (*link != nullptr && (*link)->wake_at <= t->wake_at) {
        link = &(*link)->timer_next;
    }
    t->timer_next = *link;
    *link = t;
    t->in_timer = true;
    if (link == &cs.sleepers) {
        refit_timer(cs); // a new first sleeper
    }
}

Thread* pop_due_sleeper(CpuSched& cs, uint64_t now) {
    Thread* t = cs.sleepers;
    if (t == nullptr || t->wake_at > now) {
        return nullptr;
    }
    cs.sleepers = t->timer_next;
    t->timer_next = nullptr;
    t->in_timer = false;
    return t;
}

// The time slice on a CPU with this many threads: the configured slice when few share it,
// shorter when many do (down to one tick), so that each gets a turn often enough for shares
// over a second to come out even: two slices' worth of time is divided among them.
uint64_t slice_among(uint32_t n) {
    uint64_t slice = 2 * s_config.slice_ns / n;
    if (slice > s_config.slice_ns) {
        slice = s_config.slice_ns;
    }
    return slice < s_config.tick_ns ? s_config.tick_ns : slice;
}

// slice_among(n) for the usual numbers of threads on a CPU, from init(): the switch path asks
// every time, and a division is slow.
constexpr uint32_t kSlicesKnown = 64;
uint64_t s_slices[kSlicesKnown];

ALWAYS_INLINE uint64_t slice_for(const CpuSched& cs) {
    uint32_t n = cs.queued() + 1;
    return n < kSlicesKnown ? s_slices[n] : slice_among(n);
}

// --- Placement. ---

// Where a thread that becomes runnable should go: its affinity if it has one; else its last
// CPU if that is idle; else the waker's if idle; else any idle CPU; else its last CPU.
uint32_t select_cpu(const Thread* t) {
    if (t->affinity != kAnyCpu) {
        return t->affinity;
    }
    uint32_t last = t->cpu < s_cpu_count ? t->cpu : my_index();
    if (is_idle(last)) {
        return last;
    }
    uint32_t self = my_index();
    if (is_idle(self)) {
        return self;
    }
    for (uint32_t w = 0; w < (s_cpu_count + 63) / 64; ++w) {
        uint64_t bits = __atomic_load_n(&s_idle_mask[w], __ATOMIC_RELAXED);
        if (bits != 0) {
            uint32_t cpu = w * 64 + static_cast<uint32_t>(__builtin_ctzll(bits));
            if (cpu < s_cpu_count) {
                return cpu;
            }
        }
    }
    return last;
}

// Puts a runnable thread in `cpu`'s active queue (it joins that CPU's current round: time spent
// asleep earns no credit) and makes the CPU reschedule if it should: it is idle, or the thread
// outranks what it runs.
void enqueue(uint32_t cpu, Thread* t) {
    CpuSched& cs = s_cpus[cpu];
    bool kick = false;
    {
        auto guard = cs.lock.lock_irqsave();
        if (t->round < cs.round) {
            t->round = cs.round;
        }
        cs.active().push_back(&t->link);
        t->in_transit = false;
        Thread* running = cs.current;
        kick =
            running == cs.idle || running == nullptr || t->link.priority > running->link.priority;
        if (kick) {
            cs.need_resched = true;
        }
    }
    if (!kick) {
        return;
    }
    if (cpu == my_index()) {
        return; // the caller reschedules at its next chance (preempt_if_needed or irq exit)
    }
    set_idle(cpu, false);
    hal::send_ipi(cpu, hal::IpiKind::Reschedule);
}

} // namespace

// Runs a pending reschedule now if the calling context may switch (not inside an interrupt).
void preempt_if_needed() {
    CpuSched& cs = mine();
    if (cs.need_resched && cs.irq_depth == 0 && cs.current != nullptr) {
        InterruptGuard irq;
        schedule();
    }
}

namespace {

// --- Moving threads between CPUs. ---

// Threads a CPU has: queued plus the one it runs (not counting its idle thread).
uint32_t load(const CpuSched& cs) {
    const Thread* running = cs.current;
    return cs.queued() + (running != nullptr && running != cs.idle ? 1 : 0);
}

// Takes a queued thread whose round is below `below_round` from another CPU into this one's
// active queue, choosing the thread furthest behind (fewest slices used). With
// `below_round` == kAnyRound it only takes from a CPU that has at least `margin` threads more
// than this one (the busiest); otherwise from whichever CPU has such a thread. Returns the CPU
// it took from, or kNoCpu. Takes one lock at a time.
uint32_t steal(uint32_t self, uint32_t margin, uint64_t below_round) {
    uint32_t mine_load = load(s_cpus[self]);
    // A different starting point each time, so that equally good candidates take turns.
    uint32_t start = static_cast<uint32_t>(++s_cpus[self].balance_rounds % s_cpu_count);
    uint32_t source = kNoCpu;
    uint32_t most = 0;
    for (uint32_t k = 0; k < s_cpu_count; ++k) {
        uint32_t i = (start + k) % s_cpu_count;
        const CpuSched& c = s_cpus[i];
        if (i == self || c.queued() == 0) {
            continue;
        }
        uint32_t n = load(c);
        if (below_round == kAnyRound) {
            if (n >= mine_load + margin && n > most) {
                most = n;
                source = i;
            }
        } else if (n + 1 >= mine_load) {
            // Behind-round threads are worth taking from any CPU not lighter than this one
            // will be without them.
            source = i;
            break;
        }
    }
    if (source == kNoCpu) {
        return kNoCpu;
    }
    Thread* taken = nullptr;
    {
        CpuSched& from = s_cpus[source];
        auto guard = from.lock.lock_irqsave();
        RunQueue* queues[] = {&from.active(), &from.expired()};
        for (RunQueue* q : queues) {
            for (unsigned level = 0; level < kPriorityLevels; ++level) {
                for (RunLink* l = q->first(level); l != nullptr; l = l->next) {
                    auto* t = reinterpret_cast<Thread*>(l);
                    if ((t->affinity == kAnyCpu || t->affinity == self) && t->round < below_round &&
                        !__atomic_load_n(&t->on_cpu, __ATOMIC_ACQUIRE) &&
                        (taken == nullptr || t->round < taken->round)) {
                        taken = t;
                    }
                }
            }
        }
        if (taken == nullptr) {
            return kNoCpu;
        }
        from.queues[taken->link.queue].remove(&taken->link);
        taken->in_transit = true;
    }
    CpuSched& cs = s_cpus[self];
    auto guard = cs.lock.lock_irqsave();
    if (taken->round < cs.round) {
        taken->round = cs.round;
    }
    cs.active().push_back(&taken->link);
    taken->in_transit = false;
    ++cs.steals;
    return source;
}

// --- Switching. ---

// The thread whose context `ctx` is: every context the scheduler switches from is a thread's.
Thread* thread_of(hal::ArchContext& ctx) {
    static_assert(__is_standard_layout(Thread));
    return reinterpret_cast<Thread*>(reinterpret_cast<char*>(&ctx) - offsetof(Thread, context));
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
        __atomic_store_n(&prev->on_cpu, false, __ATOMIC_RELEASE);
        if (detached) {
            free_slot(prev);
        }
        return;
    }
    __atomic_store_n(&prev->on_cpu, false, __ATOMIC_RELEASE);
}

// Under the CPU's lock: the next thread to run, or null for the idle thread. Moves to the next
// round when the active queue is empty, or when a higher priority waits in the expired one.
ALWAYS_INLINE Thread* pick_next(CpuSched& cs) {
    RunQueue* active = &cs.active();
    RunQueue* expired = &cs.expired();
    if (!expired->empty() &&
        (active->empty() || expired->top_priority() > active->top_priority())) {
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

void thread_start(void* arg) {
    // A new context starts with interrupts off (hal::context_init): the switch to it is only
    // complete once the previous thread is marked off its CPU.
    if (Thread* prev = mine().prev; prev != nullptr) {
        finish_switch(prev);
    }
    hal::irq_enable();
    auto* t = static_cast<Thread*>(arg);
    preempt_if_needed();
    t->entry(t->arg);
    exit(0);
}

// A thread's share of one CPU over its life, in 1/65536ths.
uint64_t cpu_share(uint64_t run_ns, uint64_t lifetime_ns) {
    if (lifetime_ns == 0) {
        return 0;
    }
    uint64_t share = (run_ns << 16) / lifetime_ns;
    return share > 65536 ? 65536 : share;
}

void record_exit_stats(Thread* t, uint64_t now) {
    auto guard = s_stats_lock.lock_irqsave();
    ++s_threads_exited;
    if (t->cpu_bound && now > t->created_ns) {
        uint64_t share = cpu_share(t->run_ns, now - t->created_ns);
        s_fair_sum += share;
        s_fair_sum_sq += share * share;
        ++s_fair_n;
    }
}

} // namespace

uint64_t Histogram::total() const {
    uint64_t n = 0;
    for (uint64_t c : counts) {
        n += c;
    }
    return n;
}

uint64_t Histogram::bound(unsigned i) {
    if (i < kSub) {
        return i;
    }
    unsigned msb = i / kSub + 3;
    uint64_t sub = i % kSub;
    // NOTE: the last bucket's bound wraps to 2^64 - 1, as it should.
    return ((uint64_t{kSub} + sub + 1) << (msb - 4)) - 1;
}

namespace {

// A percentile over every CPU's histogram of one kind, without merging them in memory.
uint64_t percentile(Histogram CpuHistograms::*which, uint32_t permille) {
    uint64_t total = 0;
    uint64_t max = 0;
    for (uint32_t c = 0; c < s_cpu_count; ++c) {
        if (s_cpus[c].histograms != nullptr) {
            const Histogram& h = s_cpus[c].histograms->*which;
            total += h.total();
            max = h.max > max ? h.max : max;
        }
    }
    if (total == 0) {
        return 0;
    }
    uint64_t need = total * permille / 1000;
    need = need == 0 ? 1 : need;
    uint64_t seen = 0;
    for (unsigned i = 0; i < Histogram::kBuckets; ++i) {
        for (uint32_t c = 0; c < s_cpu_count; ++c) {
            if (s_cpus[c].histograms != nullptr) {
                seen += (s_cpus[c].histograms->*which).counts[i];
            }
        }
        if (seen >= need) {
            // The bucket's upper bound, but never above the largest sample.
            uint64_t upper = Histogram::bound(i);
            return upper < max ? upper : max;
        }
    }
    return max;
}

uint64_t maximum(Histogram CpuHistograms::*which) {
    uint64_t max = 0;
    for (uint32_t c = 0; c < s_cpu_count; ++c) {
        if (s_cpus[c].histograms != nullptr) {
            uint64_t m = (s_cpus[c].histograms->*which).max;
            max = m > max ? m : max;
        }
    }
    return max;
}

} // namespace

void init(const Config& config, uint32_t cpus) {
    s_config = config;
    s_cpu_count = cpus;
    for (uint32_t n = 1; n < kSlicesKnown; ++n) {
        s_slices[n] = slice_among(n);
    }
    for (uint32_t c = 0; c < cpus; ++c) {
        auto frames = mm::frames().alloc({.order = kStackOrder,
                                          .align = 0,
                                          .owner = mm::FrameOwner::Kernel,
                                          .injectable = false});
        if (!frames.ok()) {
            panic_error("allocating the scheduler's statistics", frames.error());
        }
        s_cpus[c].index = c;
        s_cpus[c].active_queue = &s_cpus[c].queues[0];
        s_cpus[c].expired_queue = &s_cpus[c].queues[1];
        s_cpus[c].histograms = new (hal::phys_to_virt(frames.value())) CpuHistograms();
    }
}

Thread* current() {
    return mine().current;
}

namespace {

// schedule(); `end_turn`: the calling thread gives up the rest of its turn in the round (yield).
// NOTE: inlined into both schedule() and yield(), the switch path's most frequent caller.
ALWAYS_INLINE void reschedule(bool end_turn) {
    // NOTE: interrupts must be off: lock_irqs_off() below asserts it.
    // NOTE: the CPU's number is read from its entry where needed, not kept: one register
    // fewer for this function to juggle.
    CpuSched& cs = *opaque(&mine());
    Thread* prev = cs.current;
    // Out of threads for this round: first take those that other CPUs have not yet given a
    // turn in it (before taking this CPU's lock: one lock at a time).
    if (s_cpu_count > 1 && cs.active().empty()) {
        steal(cs.index, 0, cs.round + 1);
    }
    Thread* next = nullptr;
    uint64_t now = hal::now_ns();
    {
        // NOTE: no spinlock may be held across a switch: lock_irqs_off() asserts that this is
        // the only one held, and it is released before the switch.
        auto guard = cs.lock.lock_irqs_off();
        cs.need_resched = false;
        if (!prev->idle) {
            prev->run_ns += now - prev->last_in_ns;
            if (state_of(prev) == ThreadState::Running) {
                set_state(prev, ThreadState::Runnable);
                prev->runnable_since_ns = now;
                if (end_turn || prev->slice_used) {
                    // Its turn in this round is over: the next round.
                    prev->slice_used = false;
                    prev->round = (prev->round > cs.round ? prev->round : cs.round) + 1;
                    cs.expired().push_back(&prev->link);
                } else {
                    // Preempted by a higher priority mid-slice: it goes on first when it can.
                    cs.active().push_front(&prev->link);
                }
            }
        }
        next = pick_next(cs);
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
        __atomic_store_n(&next->on_cpu, true, __ATOMIC_RELEASE);
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
            if (next->cpu != cs.index || next->switches_in == 0) [[unlikely]] {
                // A thread's first run is a placement, not a migration.
                if (next->switches_in > 0) {
                    ++next->migrations;
                    ++cs.migrations;
                }
                // This CPU may still cache another stack in the slot of this one's.
                mm::kernel_space().flush_stack(next->stack);
            }
            ++next->switches_in;
        }
        next->cpu = cs.index;
        cs.current = next;
        cs.prev = prev;
        cs.slice_end = now + slice_for(cs);
        ++cs.switches;
        arm_timer(cs, now);
    }
    // NOTE: the idle bit changes only when the idle thread comes or goes; a hint left wrong by
    // a race (see set_idle) is put right by this CPU's next switch to or from its idle thread.
    if (prev->idle != next->idle) {
        set_idle(cs.index, next->idle);
    }
    if (s_config.trace) {
        trace::switched(*prev, *next);
    }
    finish_switch(thread_of(hal::context_switch(prev->context, next->context)));
}

} // namespace

void schedule() {
    reschedule(false);
}

bool wake(Thread* t) {
    ThreadState expected = ThreadState::Blocked;
    if (!__atomic_compare_exchange_n(&t->state, &expected, ThreadState::Runnable, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        return false;
    }
    t->in_transit = true;
    // It may still be switching away on its CPU: wait until its context is saved.
    while (__atomic_load_n(&t->on_cpu, __ATOMIC_ACQUIRE)) {
        hal::cpu_relax();
    }
    uint64_t now = hal::now_ns();
    if (!t->woken) {
        t->woken = true;
        t->woken_at_ns = now;
    }
    t->runnable_since_ns = now;
    ++t->wakeups;
    ++mine().wakeups;
    uint32_t target = select_cpu(t);
    if (s_config.trace) {
        trace::waking(*t, target);
    }
    enqueue(target, t);
    return true;
}

Result<ThreadId> spawn(ThreadEntry entry, void* arg, const SpawnOptions& options) {
    if (options.priority >= kPriorityLevels ||
        (options.cpu != kAnyCpu && options.cpu >= s_cpu_count)) {
        return Error::InvalidArgument;
    }
    auto slot = alloc_slot(options.injectable);
    if (!slot.ok()) {
        __atomic_fetch_add(&s_spawn_failures, 1, __ATOMIC_RELAXED);
        return slot.error();
    }
    Thread* t = slot.value();
    auto stack = mm::kernel_space().alloc_stack(options.injectable);
    if (!stack.ok()) {
        free_slot(t);
        __atomic_fetch_add(&s_spawn_failures, 1, __ATOMIC_RELAXED);
        return stack.error();
    }
    t->stack = stack.value();
    t->entry = entry;
    t->arg = arg;
    t->detached = options.detached;
    t->affinity = options.cpu;
    t->link.priority = options.priority;
    size_t n = 0;
    for (const char* c = options.name; *c != '\0' && n + 1 < kNameLength; ++c) {
        t->name[n++] = *c;
    }
    t->name[n] = '\0';
    uint64_t now = hal::now_ns();
    t->created_ns = now;
    t->runnable_since_ns = now;
    t->cpu = options.cpu != kAnyCpu ? options.cpu : my_index();
    hal::context_init(t->context, t->stack.bottom, kStackSize, &thread_start, t, t->name);
    {
        auto guard = s_stats_lock.lock_irqsave();
        ++s_threads_created;
    }
    t->in_transit = true;
    set_state(t, ThreadState::Runnable);
    uint32_t target = select_cpu(t);
    if (s_config.trace) {
        trace::waking(*t, target);
    }
    enqueue(target, t);
    preempt_if_needed();
    return t->id;
}

void exit(int code) {
    InterruptGuard irq;
    Thread* me = current();
    ASSERT(!me->idle);
    uint64_t now = hal::now_ns();
    me->run_ns += now - me->last_in_ns;
    me->last_in_ns = now;
    record_exit_stats(me, now);
    {
        auto guard = me->joiners.lock().lock_irqsave();
        me->exit_code = code;
        me->exited = true;
    }
    me->joiners.wake_all();
    set_state(me, ThreadState::Exited);
    schedule();
    panic("an exited thread was scheduled again");
}

Result<int> join(ThreadId id) {
    if (id.slot() == 0 || id.slot() >= __atomic_load_n(&s_slots, __ATOMIC_ACQUIRE)) {
        return Error::NotFound;
    }
    Thread* t = slot_address(id.slot());
    {
        auto guard = s_table_lock.lock_irqsave();
        if (t->id != id || state_of(t) == ThreadState::Free) {
            return Error::NotFound;
        }
        if (t->detached || t == current()) {
            return Error::InvalidArgument;
        }
        if (t->joined) {
            return Error::Busy;
        }
        t->joined = true;
    }
    t->joiners.wait_until([t] { return t->exited; });
    // Its CPU is still switching away from it: the stack goes first, then the slot.
    while (__atomic_load_n(&t->on_cpu, __ATOMIC_ACQUIRE) || state_of(t) != ThreadState::Exited) {
        hal::cpu_relax();
    }
    int code = t->exit_code;
    free_slot(t);
    return code;
}

void yield() {
    InterruptGuard irq;
    // Giving the CPU away ends this thread's turn in the round.
    reschedule(true);
}

void sleep_for(uint64_t ns) {
    InterruptGuard irq;
    uint32_t self = my_index();
    CpuSched& cs = s_cpus[self];
    Thread* me = cs.current;
    uint64_t now = hal::now_ns();
    {
        auto guard = cs.lock.lock_irqsave();
        me->wake_at = now + ns;
        me->cpu_bound = false;
        // NOTE: the sleep's latency is measured from its deadline, not from the tick.
        me->woken = true;
        me->woken_at_ns = me->wake_at;
        insert_sleeper(cs, me);
        set_state(me, ThreadState::Blocked);
    }
    schedule();
}

void on_tick() {
    uint32_t self = my_index();
    CpuSched& cs = s_cpus[self];
    if (cs.current == nullptr) {
        return; // not scheduling on this CPU yet
    }
    ++cs.irq_depth;
    ++cs.ticks;
    uint64_t now = hal::now_ns();
    for (;;) {
        Thread* due = nullptr;
        {
            auto guard = cs.lock.lock_irqsave();
            due = pop_due_sleeper(cs, now);
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
            if (cs.queued() == 0 && s_cpu_count > 1) {
                steal(self, 0, cs.round + 1);
            }
            auto guard = cs.lock.lock_irqsave();
            int top = cs.active().top_priority();
            int later = cs.expired().top_priority();
            int mine_priority = static_cast<int>(running->link.priority);
            if (top >= mine_priority || later >= mine_priority) {
                cs.need_resched = true;
                ++running->preemptions;
                ++cs.preemptions;
            } else {
                // Nobody to share with: the next round starts here with a new slice.
                running->slice_used = false;
                running->round = (running->round > cs.round ? running->round : cs.round) + 1;
                cs.round = running->round;
                cs.slice_end = now + slice_for(cs);
            }
        }
        if (cs.ticks % s_config.balance_ticks == 0) {
            steal(self, 2, kAnyRound); // even out the number of threads
        }
    } else if (cs.queued() != 0) {
        cs.need_resched = true;
    }
    {
        auto guard = cs.lock.lock_irqsave();
        cs.timer_armed_for = ~uint64_t{0} - 1; // the one-shot timer has fired: re-arm
        cs.timer_fits_span = 0;
        arm_timer(cs, now);
    }
    --cs.irq_depth;
    if (cs.need_resched) {
        schedule();
    }
}

void on_reschedule_ipi() {
    CpuSched& cs = mine();
    if (cs.current == nullptr) {
        return;
    }
    cs.need_resched = true;
    schedule();
}

void run_cpu() {
    uint32_t self = my_index();
    CpuSched& cs = s_cpus[self];
    auto idle = alloc_slot(false);
    if (!idle.ok()) {
        panic_error("allocating an idle thread", idle.error());
    }
    Thread* t = idle.value();
    t->idle = true;
    t->cpu = self;
    t->affinity = self;
    t->link.priority = 0;
    const char kIdle[] = "idle";
    for (size_t i = 0; i < sizeof kIdle; ++i) {
        t->name[i] = kIdle[i];
    }
    set_state(t, ThreadState::Running);
    t->on_cpu = true;
    {
        auto guard = cs.lock.lock_irqsave();
        cs.idle = t;
        cs.current = t;
    }
    for (;;) {
        hal::IrqFlags flags = hal::irq_save();
        if (cs.queued() != 0 || steal(self, 1, kAnyRound) != kNoCpu) {
            schedule();
        } else {
            {
                auto guard = cs.lock.lock_irqsave();
                arm_timer(cs, hal::now_ns());
            }
            set_idle(self, true);
            // Interrupts are off from the check to here, and wait_for_interrupt() enables
            // them atomically with the wait: a wake-up that lands in between is not lost.
            hal::wait_for_interrupt();
        }
        hal::irq_restore(flags);
    }
}

Stats stats(uint64_t now) {
    Stats s;
    uint32_t most = 0;
    uint32_t least = ~0u;
    for (uint32_t i = 0; i < s_cpu_count; ++i) {
        const CpuSched& cs = s_cpus[i];
        s.context_switches += cs.switches;
        s.preemptions += cs.preemptions;
        s.migrations += cs.migrations;
        s.wakeups += cs.wakeups;
        s.steals += cs.steals;
        uint32_t load = cs.queued() + (cs.current != nullptr && cs.current != cs.idle ? 1 : 0);
        most = load > most ? load : most;
        least = load < least ? load : least;
    }
    s.max_runnable = most;
    s.min_runnable = s_cpu_count == 0 ? 0 : least;
    s.threads_created = s_threads_created;
    s.threads_exited = s_threads_exited;
    s.spawn_failures = s_spawn_failures;
    s.run_delay_p50 = percentile(&CpuHistograms::run_delay, 500);
    s.run_delay_p99 = percentile(&CpuHistograms::run_delay, 990);
    s.wakeup_latency_p50 = percentile(&CpuHistograms::wakeup_latency, 500);
    s.wakeup_latency_p99 = percentile(&CpuHistograms::wakeup_latency, 990);
    s.wakeup_latency_max = maximum(&CpuHistograms::wakeup_latency);
    uint64_t sum = s_fair_sum;
    uint64_t sum_sq = s_fair_sum_sq;
    uint64_t n = s_fair_n;
    // Live CPU-bound threads count with their share so far; a running one with its current
    // stint up to `now`.
    for_each_thread([&](const Thread& t) {
        if (t.idle || t.state == ThreadState::Exited) {
            return;
        }
        ++s.threads_live;
        uint64_t run = t.run_ns;
        if (t.state == ThreadState::Running && now > t.last_in_ns) {
            run += now - t.last_in_ns;
        }
        if (t.cpu_bound && now > t.created_ns) {
            uint64_t share = cpu_share(run, now - t.created_ns);
            sum += share;
            sum_sq += share * share;
            ++n;
        }
    });

    s.fair_threads = n;
    s.fair_share_sum = sum;
    s.fair_share_sum_sq = sum_sq;
    return s;
}

CpuCounters cpu_counters(uint32_t cpu) {
    const CpuSched& cs = s_cpus[cpu];
    return {cs.switches, cs.preemptions, cs.migrations, cs.steals};
}

uint32_t cpu_count() {
    return s_cpu_count;
}

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
    return r.add("thread ").add(t.id.slot()).add(" '").add(t.name).add("' ");
}

} // namespace

void check_invariants(InvariantReport& report) {
    if (s_cpu_count == 0) {
        return;
    }
    if (s_table_lock.is_locked()) {
        report.skip();
        return;
    }
    for (uint32_t c = 0; c < s_cpu_count; ++c) {
        if (s_cpus[c].lock.is_locked()) {
            report.skip();
            return;
        }
    }
    uint64_t queued = 0;
    for (uint32_t c = 0; c < s_cpu_count; ++c) {
        const CpuSched& cs = s_cpus[c];
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
        uint64_t previous = 0;
        uint64_t sleepers = 0;
        for (const Thread* t = cs.sleepers; t != nullptr; t = t->timer_next) {
            if (++sleepers > s_slots) {
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
    }
    report.did(s_slots + queued + s_cpu_count);
    uint64_t marked = 0;
    for (uint32_t slot = 1; slot < s_slots; ++slot) {
        const Thread* t = slot_address(slot);
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
            (t->cpu >= s_cpu_count || s_cpus[t->cpu].current != t)) {
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

uint32_t thread_slots() {
    return s_slots;
}

Thread* thread_at(uint32_t slot) {
    return slot < s_slots ? slot_address(slot) : nullptr;
}

} // namespace core::sched
