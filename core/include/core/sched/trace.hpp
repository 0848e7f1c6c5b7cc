#pragma once

// The schedule trace, kernel side: what the scheduler tells hal/trace.hpp when tracing is on
// (the environment's duet.trace=1, read at boot into sched::Config::trace). The scheduler
// checks the flag itself, so that an untraced switch pays one predictable branch.

#include <core/sched/thread.hpp>

#include <stdint.h>

namespace core::sched::trace {

// The pid of the pseudo-process "duet" that holds a trace's counters and instants: one that no
// thread number can be (they stop at kMaxThreadNumber).
inline constexpr uint32_t kProcessPid = kMaxThreadNumber + 1;
static_assert(kProcessPid == 0x7fff'ffff);

// A thread's pid in traces, in the debugger helpers and in the report: its number
// (Thread::number), unique in a run; 0 for a CPU's idle thread.
inline uint32_t pid(const Thread& t) {
    return t.idle ? 0 : t.number;
}

// `prev` is switched away from (its state says why), `next` is switched to, on this CPU.
// Also samples the counters (free frames, heap) and reports those that changed.
void switched(const Thread& prev, const Thread& next);

// `t` becomes runnable (woken, or new) and goes to `cpu`'s run queue.
void waking(const Thread& t, uint32_t cpu);

} // namespace core::sched::trace
