#pragma once

// The schedule trace, kernel side: what the scheduler tells hal/trace.hpp when tracing is on
// (the environment's duet.trace=1, read at boot into sched::Config::trace). The scheduler
// checks the flag itself, so that an untraced switch pays one predictable branch.

#include <core/sched/thread.hpp>

#include <stdint.h>

namespace core::sched::trace {

// The process id traces give every thread but the idle ones (0): one pseudo-process, "duet",
// that no thread number can be (thread numbers are below a million in each generation).
inline constexpr uint32_t kProcessPid = 999'999;

// A thread's number in traces and in the debugger helpers: its slot in the thread table, plus
// a million for each earlier occupant of the slot (so a reused slot gets a new number); 0 for
// a CPU's idle thread. tools/gdb/duet.py computes the same.
uint32_t pid(const Thread& t);

// `prev` is switched away from (its state says why), `next` is switched to, on this CPU.
// Also samples the counters (free frames, heap) and reports those that changed.
void switched(const Thread& prev, const Thread& next);

// `t` becomes runnable (woken, or new) and goes to `cpu`'s run queue.
void waking(const Thread& t, uint32_t cpu);

} // namespace core::sched::trace
