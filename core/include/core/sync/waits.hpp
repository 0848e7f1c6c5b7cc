#pragma once

// Who waits for what: for each blocked thread, a line naming what it waits for -- a mutex (and
// the thread that holds it), an event, another thread's exit (join), the end of a sleep, an
// IPC call, receive or wait (and the process that owes the reply), or else a wait queue -- then
// each cycle of threads waiting for mutexes the others hold (a deadlock), once. Reads the thread
// table and the locks' owners without taking any lock: for a machine that has stopped (the
// simulator's deadlock verdict) or the watchdog's report. A template, so that the kernel's stack
// check sees every call.

#include <core/lib/line.hpp>
#include <core/sched/scheduler.hpp>
#include <core/sched/thread.hpp>
#include <core/user/ipc.hpp>

#include <stddef.h>

namespace core {

namespace waits_detail {

inline void name_thread(LineBuffer& line, const sched::Thread& t) {
    line.str("thread ").dec(t.number).str(" '").str(t.name).chr('\'');
}

// The thread that holds the mutex `t` waits for, or null.
inline const sched::Thread* holder(const sched::Thread& t) {
    if (t.state != sched::ThreadState::Blocked || t.waiting_for_mutex == nullptr) {
        return nullptr;
    }
    return t.waiting_for_mutex->owner();
}

} // namespace waits_detail

// Calls emit(line, length) for each line (no newline; at most 255 bytes). Returns how many
// threads it found blocked.
template <typename Emit>
size_t describe_waits(Emit emit) {
    using sched::Thread;
    using sched::ThreadState;
    using waits_detail::holder;
    using waits_detail::name_thread;
    char text[256];
    size_t waiting = 0;
    sched::for_each_thread([&](const Thread& t) {
        if (t.state != ThreadState::Blocked) {
            return;
        }
        LineBuffer line(text, sizeof text);
        if (t.waiting_for_mutex != nullptr) {
            const Thread* owner = t.waiting_for_mutex->owner();
            name_thread(line, t);
            line.str(" waits for mutex '").str(t.waiting_for_mutex->name()).str("', held by ");
            if (owner == nullptr) {
                line.str("nobody (its hand-over is under way)");
            } else {
                name_thread(line, *owner);
                // A detached thread's slot is freed when it exits (and may be reused).
                if (owner->state == ThreadState::Exited || owner->state == ThreadState::Free) {
                    line.str(", which has exited without unlocking it");
                }
            }
        } else if (t.waiting_for_event != nullptr) {
            name_thread(line, t);
            line.str(" waits for event '")
                .str(t.waiting_for_event->name())
                .str("', which has no token for it");
        } else if (t.waiting_for_exit != nullptr) {
            name_thread(line, t);
            line.str(" waits for ");
            name_thread(line, *t.waiting_for_exit);
            line.str(" to exit");
        } else if (t.in_timer) {
            name_thread(line, t);
            line.str(" sleeps until ").dec(t.wake_at).str(" ns");
        } else if (t.process != 0) {
            name_thread(line, t);
            user::ipc::describe_blocked(t, line); // a process's thread, maybe in IPC
        } else {
            name_thread(line, t);
            line.str(" waits on a wait queue");
        }
        ++waiting;
        line.terminate('\0');
        emit(text, line.length());
    });
    // Cycles: from each waiter, follow "waits for a mutex held by" at most as many steps as
    // there are threads; a walk that comes back to where it started is a cycle, reported from
    // its lowest slot only, so each cycle is named once.
    size_t threads = sched::thread_slots();
    sched::for_each_thread([&](const Thread& start) {
        const Thread* t = holder(start);
        size_t steps = 0;
        while (t != nullptr && t != &start && steps++ < threads) {
            if (t->id.slot() < start.id.slot()) {
                return;
            }
            t = holder(*t);
        }
        if (t != &start) {
            return;
        }
        LineBuffer line(text, sizeof text);
        line.str("deadlock: ");
        const Thread* at = &start;
        do {
            name_thread(line, *at);
            line.str(" waits for '").str(at->waiting_for_mutex->name()).str("' held by ");
            at = holder(*at);
        } while (at != &start);
        name_thread(line, start);
        line.terminate('\0');
        emit(text, line.length());
    });
    return waiting;
}

} // namespace core
