#include <core/lib/atomic.hpp>
#include <core/lib/log.hpp>
#include <core/lib/panic.hpp>
#include <core/lib/placement_new.hpp>
#include <core/mm/heap.hpp>
#include <core/mm/physical_memory.hpp>
#include <core/sched/scheduler.hpp>
#include <core/sched/thread.hpp>
#include <core/sync/lock_order.hpp>
#include <core/workload/workload.hpp>

#include <hal/cpu.hpp>
#include <hal/mmu.hpp>
#include <hal/time.hpp>

namespace core::workload {

namespace {

struct NamedMutex {
    Mutex mutex{"workload.mutex"};
};
struct NamedEvent {
    Semaphore event{"workload.event"};
};

// The running workload. One at a time; its state lives here, not on a heap.
View s_view;
NamedMutex s_mutexes[kMaxSyncObjects];
NamedEvent s_events[kMaxSyncObjects];
// The order in which threads took the mutexes: an inversion stops the run the first time it is
// seen, deadlock or not.
LockOrderGraph s_order;
SpinLock s_order_lock("workload.lock-order", LockRank::LockOrder);
uint64_t s_live = 0; // workload threads started and not yet exited
Semaphore s_done("workload.done");
Results s_results;

void add(uint64_t& counter, uint64_t n = 1) {
    atomic::fetch_add<atomic::relaxed>(&counter, n);
}

struct Slot {
    enum class Kind : uint8_t { Empty, Frames, Heap } kind = Kind::Empty;
    hal::PhysAddr base{};
    unsigned order = 0;
    void* block = nullptr; // Heap
    uint64_t bytes = 0;    // Heap
};

// A thread's named buffers, each made empty when the program first names it.
// NOTE: zeroing all 16 at every thread's start was a third of the interpreter's instructions
// in a spawn chain, and 640 bytes of stack written per thread.
class Slots {
public:
    Slots() {}
    Slot& operator[](uint32_t i) {
        if ((m_named & (1u << i)) == 0) {
            m_named |= 1u << i;
            new (&m_slots[i]) Slot();
        }
        return m_slots[i];
    }

private:
    static_assert(kMaxSlots <= 32, "one bit a slot");
    uint32_t m_named = 0;
    union {
        Slot m_slots[kMaxSlots];
    };
};

void release(Slot& s) {
    if (s.kind == Slot::Kind::Frames) {
        if (auto r = mm::frames().free(s.base, s.order); !r.ok()) {
            panic_error("workload: freeing its frames", r.error());
        }
    } else if (s.kind == Slot::Kind::Heap) {
        mm::kfree(s.block);
    }
    s = Slot{};
}

unsigned order_for(uint32_t frames) {
    unsigned order = 0;
    while ((uint64_t{1} << order) < frames) {
        ++order;
    }
    return order;
}

void thread_main(void* arg);

const char* mutex_name(uint32_t i) {
    return s_mutexes[i].mutex.name();
}

// Stops the run: the calling thread takes mutex `taking` while it holds `held`, and the
// opposite order (`taking`, then through others, `held`) was seen before.
[[noreturn]] void lock_order_inversion(uint32_t taking, uint32_t held) {
    const sched::Thread* me = sched::current();
    LogLine("lock order")
        .str("thread ")
        .dec(me->number)
        .str(" '")
        .str(me->name)
        .str("' takes mutex '")
        .str(mutex_name(taking))
        .chr('\'');
    if (taking == held) {
        LogLine("lock order").str("which it holds already: it can never get it");
    } else {
        LogLine("lock order").str("while it holds '").str(mutex_name(held)).str("'; before,");
        uint32_t path[LockOrderGraph::kMaxLocks];
        uint32_t n;
        {
            auto guard = s_order_lock.lock_irqsave();
            n = s_order.path(taking, held, path, LockOrderGraph::kMaxLocks);
        }
        for (uint32_t i = 0; i + 1 < n; ++i) {
            LogLine("lock order")
                .str("'")
                .str(mutex_name(path[i + 1]))
                .str("' was taken while holding '")
                .str(mutex_name(path[i]))
                .chr('\'');
        }
    }
    panic("workload: mutexes taken in an order that inverts one seen before (lock order above)");
}

// A program unlocked a mutex it does not hold: on a real kernel that is corrupted state (or a
// thread let into a critical section it never waited for), so it stops the run here, naming
// the thread and who holds the mutex.
[[noreturn]] void unlock_not_held(uint32_t m) {
    const sched::Thread* me = sched::current();
    // NOTE: read without the mutex's lock: a report, and the machine stops right after.
    const sched::Thread* owner = s_mutexes[m].mutex.owner();
    LogLine("workload")
        .str("thread ")
        .dec(me->number)
        .str(" '")
        .str(me->name)
        .str("' unlocks mutex '")
        .str(mutex_name(m))
        .str("', which it does not hold;");
    if (owner == nullptr) {
        LogLine("workload").str("nobody holds it");
    } else {
        LogLine("workload")
            .str("thread ")
            .dec(owner->number)
            .str(" '")
            .str(owner->name)
            .str("' holds it");
    }
    panic("workload: a thread unlocked a mutex it does not hold (above)");
}

// `due`: when the spawn that starts it began (fairness counts from there).
bool start(uint32_t program, uint8_t priority, uint32_t cpu, uint64_t due) {
    add(s_live);
    sched::SpawnOptions options;
    options.due_ns = due;
    options.name = s_view.programs[program].name;
    options.priority = priority;
    options.cpu = cpu;
    options.detached = true;
    auto id = sched::spawn(&thread_main, reinterpret_cast<void*>(uintptr_t{program}), options);
    if (!id.ok()) {
        add(s_results.spawn_failures);
        if (atomic::fetch_sub<atomic::acq_rel>(&s_live, 1) == 1) {
            s_done.signal();
        }
        return false;
    }
    add(s_results.threads_started);
    return true;
}

[[noreturn]] void finish(int64_t code) {
    add(s_results.threads_exited);
    atomic::fetch_add<atomic::relaxed>(&s_results.exit_code_sum, code);
    if (atomic::fetch_sub<atomic::acq_rel>(&s_live, 1) == 1) {
        s_done.signal();
    }
    sched::exit(static_cast<int>(code));
}

void thread_main(void* arg) {
    const Program& prog = s_view.programs[reinterpret_cast<uintptr_t>(arg)];
    const Instruction* code = s_view.code;
    Slots slots;
    struct Loop {
        uint32_t start;
        uint32_t end;
        uint32_t remaining;
    } loops[kMaxNesting];
    uint32_t depth = 0;
    uint64_t held = 0; // bit i: this thread holds mutex i
    uint32_t pc = prog.first;
    uint32_t end = prog.first + prog.count;
    // The next pc that needs more than a fetch: the innermost loop's end, else the program's
    // (bodies nest, so pc reaches it exactly). One compare per instruction.
    uint32_t limit = end;
    for (;;) {
        if (pc >= limit) [[unlikely]] {
            if (depth == 0) {
                break;
            }
            if (--loops[depth - 1].remaining > 0) {
                pc = loops[depth - 1].start;
            } else {
                --depth;
                limit = depth > 0 ? loops[depth - 1].end : end;
            }
            continue;
        }
        const Instruction& in = code[pc++];
        switch (in.op) {
        case Op::Compute:
            hal::cpu_work(in.c);
            break;
        case Op::Sleep:
            sched::sleep_for(in.c);
            break;
        case Op::Yield:
            sched::yield();
            break;
        case Op::AllocFrames: {
            release(slots[in.a]);
            unsigned order = order_for(in.b);
            auto r =
                mm::frames().alloc({.order = order, .align = 0, .owner = mm::FrameOwner::User});
            if (r.ok()) {
                slots[in.a] = {Slot::Kind::Frames, r.value(), order};
                add(s_results.frames_allocated, uint64_t{1} << order);
            } else {
                add(s_results.alloc_failures);
            }
            break;
        }
        case Op::AllocHeap: {
            release(slots[in.a]);
            void* p = mm::kmalloc(in.b);
            if (p != nullptr) {
                slots[in.a] = {Slot::Kind::Heap, {}, 0, p, in.b};
                add(s_results.heap_allocated, in.b);
            } else {
                add(s_results.alloc_failures);
            }
            break;
        }
        case Op::Free:
            release(slots[in.a]);
            break;
        case Op::Touch: {
            const Slot& s = slots[in.a];
            if (s.kind == Slot::Kind::Frames) {
                auto* p = static_cast<volatile uint8_t*>(hal::phys_to_virt(s.base));
                for (uint64_t off = 0; off < (uint64_t{4096} << s.order); off += 4096) {
                    p[off] = static_cast<uint8_t>(off >> 12);
                }
            } else if (s.kind == Slot::Kind::Heap) {
                auto* p = static_cast<volatile uint8_t*>(s.block);
                for (uint64_t off = 0; off < s.bytes; off += 64) {
                    p[off] = static_cast<uint8_t>(off);
                }
            }
            break;
        }
        case Op::Spawn: {
            uint64_t due = hal::now_ns();
            for (uint32_t i = 0; i < in.b; ++i) {
                start(in.a, sched::kDefaultPriority, sched::kAnyCpu, due);
            }
            break;
        }
        case Op::Lock: {
            if (held != 0) {
                uint32_t inverted;
                {
                    auto guard = s_order_lock.lock_irqsave();
                    inverted = s_order.take(held, in.a);
                }
                if (inverted != LockOrderGraph::kNone) {
                    lock_order_inversion(in.a, inverted);
                }
            }
            uint64_t asked = hal::now_ns();
            s_mutexes[in.a].mutex.lock();
            held |= uint64_t{1} << in.a;
            add(s_results.lock_acquisitions);
            uint64_t waited = hal::now_ns() - asked;
            uint64_t longest = atomic::load<atomic::relaxed>(&s_results.lock_wait_max_ns);
            while (waited > longest && !atomic::compare_exchange<atomic::relaxed, atomic::relaxed>(
                                           &s_results.lock_wait_max_ns, &longest, waited)) {
            }
            break;
        }
        case Op::Unlock:
            if (!s_mutexes[in.a].mutex.held_by_current()) {
                unlock_not_held(in.a);
            }
            s_mutexes[in.a].mutex.unlock();
            held &= ~(uint64_t{1} << in.a);
            break;
        case Op::Wait:
            s_events[in.a].event.wait();
            break;
        case Op::Signal:
            s_events[in.a].event.signal();
            add(s_results.events_signalled);
            break;
        case Op::Exit:
            finish(static_cast<int64_t>(in.c));
        case Op::Repeat:
            if (in.b == 0) {
                pc += in.a;
            } else {
                loops[depth++] = {pc, pc + in.a, in.b};
                limit = pc + in.a;
            }
            break;
        }
    }
    finish(0);
}

} // namespace

const Results& last_results() {
    return s_results;
}

Results run(const View& workload) {
    s_view = workload;
    s_order = LockOrderGraph{};
    for (uint32_t i = 0; i < workload.header->mutex_count; ++i) {
        s_mutexes[i].mutex.set_label(workload.mutex_names[i]);
    }
    for (uint32_t i = 0; i < workload.header->event_count; ++i) {
        s_events[i].event.set_label(workload.event_names[i]);
    }
    s_results = Results{};
    // One reference for the starter itself, so the count cannot reach zero while it still
    // starts threads.
    add(s_live);
    // Every thread of the spawn lines is due now: one that init only gets to start later (a
    // higher priority it started first keeps it off the CPU) has been kept from running.
    uint64_t due = hal::now_ns();
    for (uint32_t i = 0; i < workload.header->spawn_count; ++i) {
        const Spawn& sp = workload.spawns[i];
        for (uint32_t n = 0; n < sp.count; ++n) {
            start(sp.program, sp.priority, sp.cpu, due);
        }
    }
    if (atomic::fetch_sub<atomic::acq_rel>(&s_live, 1) != 1) {
        s_done.wait();
    }
    LogLine("workload")
        .dec(s_results.threads_started)
        .str(" threads started, ")
        .dec(s_results.threads_exited)
        .str(" exited, ")
        .dec(s_results.spawn_failures)
        .str(" spawn failures, ")
        .dec(s_results.alloc_failures)
        .str(" allocation failures");
    return s_results;
}

} // namespace core::workload
