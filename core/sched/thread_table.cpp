// The thread table and a thread's life: slots in chunks of frames, indexed by slot number, with
// a generation in each handle; spawn, exit and join.

#include "internal.hpp"

#include <core/lib/atomic.hpp>
#include <core/lib/placement_new.hpp>
#include <core/mm/physical_memory.hpp>
#include <core/sched/trace.hpp>

#include <hal/cpu.hpp>
#include <hal/mmu.hpp>

#include <stddef.h>

namespace core::sched {

using namespace detail;

namespace {

constexpr unsigned kChunkOrder = 4; // 64 KiB of Thread slots per chunk
constexpr uint32_t kSlotsPerChunk = static_cast<uint32_t>((4096u << kChunkOrder) / sizeof(Thread));
constexpr uint32_t kMaxChunks = 4096;

SpinLock s_table_lock("thread.table", LockRank::ThreadTable);
Thread* s_chunks[kMaxChunks];
uint32_t s_slots = 1; // slot 0 is never used: ThreadId 0 means "no thread"
Thread* s_free_slots = nullptr;
uint32_t s_last_number = 0;     // the number the last spawned thread got (under s_table_lock)
uint64_t s_threads_created = 0; // the numbers taken (under s_table_lock)

Thread* slot_address(uint32_t slot) {
    Thread* chunk = s_chunks[slot / kSlotsPerChunk];
    return chunk == nullptr ? nullptr : chunk + slot % kSlotsPerChunk;
}

} // namespace

namespace detail {

Result<Thread*> alloc_slot(bool injectable, uint32_t* number) {
    auto guard = s_table_lock.lock_irqsave();
    if (number != nullptr && s_last_number >= kMaxThreadNumber) {
        return Error::CapacityExceeded;
    }
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
        // NOTE: join() reads the count without the lock: a release store, after the chunk's
        // pointer, pairs with its acquire load.
        atomic::store<atomic::release>(&s_slots, s_slots + 1);
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
    if (number != nullptr) {
        ++s_threads_created;
        *number = ++s_last_number;
    }
    return t;
}

uint64_t threads_created() {
    return s_threads_created;
}

void set_last_number(uint32_t number) {
    auto guard = s_table_lock.lock_irqsave();
    s_last_number = number;
}

void free_slot(Thread* t) {
    auto guard = s_table_lock.lock_irqsave();
    atomic::store<atomic::release>(&t->state, ThreadState::Free);
    t->free_next = s_free_slots;
    s_free_slots = t;
}

bool table_locked() {
    return s_table_lock.is_locked();
}

void thread_start(void* arg) {
    // A new context starts with interrupts off (hal::context_init): the switch to it is only
    // complete once the previous thread is marked off its CPU.
    if (Thread* prev = this_cpu().sched.prev; prev != nullptr) {
        finish_switch(prev);
    }
    hal::irq_enable();
    auto* t = static_cast<Thread*>(arg);
    preempt_if_needed();
    t->entry(t->arg);
    exit(0);
}

} // namespace detail

Result<ThreadId> spawn(ThreadEntry entry, void* arg, const SpawnOptions& options) {
    if (options.priority >= kPriorityLevels ||
        (options.cpu != kAnyCpu && options.cpu >= g_cpu_count)) {
        return Error::InvalidArgument;
    }
    // NOTE: the stack first, then the slot and the number under one lock of the table: a spawn
    // cannot fail once it has its number, so failed spawns leave no gaps in the numbers.
    auto stack = mm::kernel_space().alloc_stack(options.injectable);
    if (!stack.ok()) {
        count_spawn_failure();
        return stack.error();
    }
    uint32_t number = 0;
    auto slot = alloc_slot(options.injectable, &number);
    if (!slot.ok()) {
        // NOTE: this thread may have moved since alloc_stack() flushed the stack on its CPU,
        // and free_stack() may keep it as flushed on this CPU (kernel_space.hpp).
        mm::kernel_space().flush_stack(stack.value());
        if (auto r = mm::kernel_space().free_stack(stack.value()); !r.ok()) {
            panic_error("freeing an unused stack", r.error());
        }
        count_spawn_failure();
        return slot.error();
    }
    Thread* t = slot.value();
    t->stack = stack.value();
    t->number = number;
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
    t->share_from_ns = options.due_ns != 0 && options.due_ns < now ? options.due_ns : now;
    t->runnable_since_ns = now;
    t->cpu = options.cpu != kAnyCpu ? options.cpu : this_cpu().index;
    {
        // NOTE: the new context's first frame is written through this CPU's translation of the
        // stack's slot, and this thread may have moved since alloc_stack() flushed the stack on
        // its CPU: a stale translation here put the frame in the slot's old frames, and the
        // thread started from whatever its own held (QEMU, 4 CPUs, qemu.spawn_storm: 2 boots
        // in 20). Flushed here if this CPU has not, and written before anything can move us.
        InterruptGuard irq;
        mm::kernel_space().flush_stack(t->stack);
        hal::context_init(t->context, t->stack.bottom, kStackSize, &thread_start, t, t->name);
    }
    t->in_transit = true;
    set_state(t, ThreadState::Runnable);
    uint32_t target = select_cpu(t);
    if (g_config.trace) {
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
    record_exit_stats(me, now, code);
    // NOTE: nobody joins a detached thread (join() refuses it): no lock and no wake-up for it
    // (160 of 2,700 instructions of a thread's life in a spawn chain).
    if (!me->detached) {
        {
            auto guard = me->joiners.lock().lock_irqsave();
            me->exit_code = code;
            me->exited = true;
        }
        me->joiners.wake_all();
    }
    set_state(me, ThreadState::Exited);
    schedule();
    panic("an exited thread was scheduled again");
}

Result<int> join(ThreadId id) {
    if (id.slot() == 0 || id.slot() >= atomic::load<atomic::acquire>(&s_slots)) {
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
    current()->waiting_for_exit = t;
    t->joiners.wait_until([t] { return t->exited; });
    current()->waiting_for_exit = nullptr;
    // Its CPU is still switching away from it: the stack goes first, then the slot.
    while (atomic::load<atomic::acquire>(&t->on_cpu) || state_of(t) != ThreadState::Exited) {
        hal::cpu_relax();
    }
    int code = t->exit_code;
    free_slot(t);
    return code;
}

uint32_t thread_slots() {
    return s_slots;
}

Thread* thread_at(uint32_t slot) {
    return slot < s_slots ? slot_address(slot) : nullptr;
}

} // namespace core::sched
