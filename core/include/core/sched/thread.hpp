#pragma once

// Kernel threads: spawn, exit, join, yield, sleep. Each thread has its own kernel stack (from
// mm::KernelSpace::alloc_stack(): below an unmapped guard page, its frames from the frame
// allocator, so stacks are accounted as the same frames on both machines) and runs on one CPU
// at a time, chosen by the per-CPU scheduler (core/sched/scheduler.hpp).

#include <core/lib/result.hpp>
#include <core/mm/kernel_space.hpp>
#include <core/sched/run_queue.hpp>
#include <core/sync/wait_queue.hpp>

#include <hal/context.hpp>
#include <hal/types.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core::sched {

using ThreadEntry = void (*)(void* arg);

inline constexpr uint32_t kAnyCpu = ~0u;
inline constexpr unsigned kStackOrder = 2; // 16 KiB kernel stacks
inline constexpr size_t kStackSize = size_t{4096} << kStackOrder;
inline constexpr size_t kNameLength = 24;
// Thread numbers are handed out once each, in spawn order, from 1; spawn() refuses a thread
// once they are used up rather than hand one out again. Below 2^31 so that every trace reader
// (some parse a pid as a signed 32-bit int) reads them whole; 2^31 - 1 is the trace's process.
inline constexpr uint32_t kMaxThreadNumber = 0x7fff'fffe;

// A thread's handle: its slot in the thread table and the slot's generation, so a handle to
// an exited and reaped thread never names its slot's next occupant.
struct ThreadId {
    uint64_t value = 0;
    constexpr bool valid() const { return value != 0; }
    constexpr bool operator==(const ThreadId&) const = default;
    constexpr uint32_t slot() const { return static_cast<uint32_t>(value); }
    constexpr uint32_t generation() const { return static_cast<uint32_t>(value >> 32); }
};

struct SpawnOptions {
    const char* name = "thread";
    uint8_t priority = kDefaultPriority; // 0 .. kPriorityLevels - 1, higher runs first
    uint32_t cpu = kAnyCpu;              // affinity: one CPU, or any
    bool detached = false;               // nobody joins it: reaped as soon as it exits
    // false: the simulator never injects an allocation failure into starting it (the kernel's
    // own threads, such as init; the workload's threads see injected failures).
    bool injectable = true;
    // When the thread was meant to start, if earlier than its creation (0: now): a thread whose
    // creation was held up (its creator kept waiting for a CPU) counts that wait as time it
    // did not run, in the fairness index.
    uint64_t due_ns = 0;
};

enum class ThreadState : uint8_t {
    Free,     // an unused slot
    Runnable, // in a run queue (or being placed in one)
    Running,  // some CPU's current thread
    Blocked,  // waiting: on a wait queue, a mutex, a semaphore, or asleep
    Exited,   // done; its slot lives until it is joined (or at once if detached)
};

struct Thread {
    RunLink link; // NOTE: first, so a RunLink* from a run queue is the Thread*
    ThreadId id;
    // The thread's number: unique in a run (a reused slot gets a new one), 0 for a CPU's idle
    // thread. Traces show it as the pid, and so do the debugger helpers and the report.
    uint32_t number = 0;
    ThreadState state = ThreadState::Free; // changed with core/lib/atomic.hpp
    bool on_cpu = false; // set while a CPU runs it, until the switch away has completed
    bool idle = false;   // a CPU's idle thread
    bool detached = false;
    bool exited = false;     // exit() ran; exit_code is valid (under joiners' lock; not detached)
    bool joined = false;     // someone has claimed the join
    bool cpu_bound = true;   // never blocked or slept: counted in the fairness index
    bool woken = false;      // made runnable by a wake-up (its latency is measured when it runs)
    bool handoff = false;    // a mutex or semaphore was handed to it while it waited
    bool slice_used = false; // it used up its time slice (or yielded): its round is over
    // Runnable and on its way into a run queue (being woken, spawned or stolen): the one time
    // a runnable thread is in no queue. For the simulator's invariant checks.
    bool in_transit = false;
    uint32_t cpu = 0; // the CPU it runs on, or ran on last
    // NOTE: affinity, round and on_cpu are all a steal reads of each queued thread: kept in
    // the thread's first 64 bytes with its link, so that a steal's walk of another CPU's queues
    // misses the cache once a thread rather than twice.
    uint32_t affinity = kAnyCpu;
    uint64_t round = 0; // time slices used up (the scheduler's fairness across CPUs)
    int exit_code = 0;
    // The process whose user code the thread runs, as 1 + its slot in the process table
    // (core/user/process.hpp); 0 for a kernel thread. Set by the thread itself before it first
    // enters user mode. NOTE: 32 bits, in the hole after exit_code: a larger Thread would fit
    // fewer slots in a chunk of the thread table.
    uint32_t process = 0;
    uint8_t process_thread = 0; // which of the process's threads (its slot in Process::threads)
    hal::ArchContext context{};
    ThreadEntry entry = nullptr;
    void* arg = nullptr;
    mm::KernelStack stack{};
    char name[kNameLength] = {};

    // Waiting on a queue; for a mutex or a semaphore, which one (for reports of who waits for
    // what: set and cleared by the waiter, under the queue's lock).
    Thread* wait_next = nullptr;
    const Mutex* waiting_for_mutex = nullptr;
    const Semaphore* waiting_for_event = nullptr;
    const Thread* waiting_for_exit = nullptr; // in join(): the thread it joins
    // Sleeping: in a CPU's timer list, sorted by wake_at.
    Thread* timer_next = nullptr;
    bool in_timer = false;
    uint64_t wake_at = 0;

    WaitQueue joiners{"thread.join"};
    Thread* free_next = nullptr;

    // Metrics, in virtual or real nanoseconds as hal::now_ns() counts them.
    // Where its share of a CPU (the fairness index) is measured from: when it was due to start
    // (SpawnOptions::due_ns), or else created.
    uint64_t share_from_ns = 0;
    uint64_t run_ns = 0;
    uint64_t last_in_ns = 0;
    uint64_t runnable_since_ns = 0;
    uint64_t woken_at_ns = 0;
    uint64_t run_delay_ns = 0;
    uint64_t wakeups = 0;
    uint64_t preemptions = 0;
    uint64_t migrations = 0;
    uint64_t switches_in = 0;
};

// Starts a thread running `entry(arg)`. OutOfMemory if no stack or slot could be had;
// CapacityExceeded once kMaxThreadNumber threads were spawned; InvalidArgument for a priority
// or CPU out of range. Thread context or boot, any CPU.
[[nodiscard]] Result<ThreadId> spawn(ThreadEntry entry, void* arg, const SpawnOptions& options);

// Ends the calling thread with `code`; its joiner (if any) gets the code.
[[noreturn]] void exit(int code);

// Waits until thread `id` has exited and returns its exit code; its slot is then reused.
// NotFound for a handle that names no thread (never was, or was joined already);
// InvalidArgument for a detached thread or the caller itself; Busy if another thread joins it.
[[nodiscard]] Result<int> join(ThreadId id);

// Gives the CPU to another runnable thread of the same or higher priority, if there is one.
void yield();

// Blocks the calling thread for at least `ns` nanoseconds (woken on the first timer tick at or
// after the deadline), unless `unless` is given and set: it is read under the CPU's run-queue
// lock, so a thread that sets it and then calls cancel_sleep() either finds the sleeper or
// keeps it from sleeping, provided it retries while the sleeper may still be on its way (a
// process's threads: core/user/process.cpp). false if it did not sleep.
bool sleep_for(uint64_t ns, const bool* unless = nullptr);

// Wakes thread `t` now if it sleeps in sleep_for(): takes it off its CPU's sleepers. false if
// it was not asleep (not yet, or no longer). Thread context, no spinlock held.
bool cancel_sleep(Thread* t);

// The calling CPU's current thread.
Thread* current();

} // namespace core::sched
