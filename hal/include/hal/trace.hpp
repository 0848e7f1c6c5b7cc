#pragma once

/// @file
/// Schedule tracing: the scheduler reports its switches and wake-ups, and a few counters, and
/// the backend records each with the calling CPU's index and clock. The simulator keeps them
/// for `duet run --trace`; bare metal prints one `trace: ...` line each on COM1, which
/// tools/com1-to-trace turns into the same trace file (docs/debugging.md).
///
/// The core calls the trace_* functions only while tracing is on (the environment's
/// `duet.trace=1`), so they cost nothing otherwise; thread_exited() it calls always. They are
/// called on the switch path: with interrupts off, possibly with a spinlock held by the caller's
/// caller; they must not block, allocate, switch or call back into the scheduler. In the simulator
/// they take no virtual time and are no preemption point, so that a traced run is the same run as
/// an untraced one.

#include <hal/types.hpp>

namespace hal {

/// A thread as a trace shows it. `name` is only read during the call.
struct TraceThread {
    const char* name = "";
    uint32_t pid = 0;     ///< the thread's trace number; 0 for a CPU's idle thread
    uint8_t priority = 0; ///< 0 (lowest) to 7, as the scheduler has it
    char state = 'R';     ///< after a switch away: 'R' runnable, 'S' blocked, 'X' exited
};

/// The calling CPU switches from `prev` to `next`; called just before the switch.
void trace_switch(const TraceThread& prev, const TraceThread& next);

/// The calling CPU makes `thread` runnable (a wake-up, or a new thread) and queues it on CPU
/// `target_cpu`.
void trace_waking(const TraceThread& thread, uint32_t target_cpu);

/// A counter (`name`, a string literal without spaces) has the value `value` from now on.
void trace_counter(const char* name, uint64_t value);

/// A thread's statistics over its whole life, as it exits. `name` is only read during the call.
struct ThreadSummary {
    const char* name = "";
    uint32_t pid = 0;     ///< as in TraceThread: the thread's number, unique in a run
    uint8_t priority = 0; ///< 0 (lowest) to 7
    uint32_t cpu = 0;     ///< the CPU it exits on
    int exit_code = 0;
    uint64_t run_ns = 0;       ///< time it ran
    uint64_t run_delay_ns = 0; ///< time it was runnable and waited for a CPU
    uint64_t wakeups = 0;
    uint64_t preemptions = 0;
    uint64_t migrations = 0;
};

/// The calling thread exits (called for every thread but the idle ones, traced or not, once,
/// with interrupts off, before its last switch): the last the core says about it, since its
/// slot is then reused. The simulator keeps these for its report; bare metal drops them.
void thread_exited(const ThreadSummary& summary);

} // namespace hal
