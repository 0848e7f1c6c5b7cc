#include <core/lib/line.hpp>
#include <core/sched/scheduler.hpp>
#include <core/sched/thread.hpp>
#include <core/sync/waits.hpp>

namespace core {

namespace {

using sched::Thread;
using sched::ThreadState;

void name_thread(LineBuffer& line, const Thread& t) {
    line.str("thread ").dec(t.id.slot()).str(" '").str(t.name).chr('\'');
}

// The thread that holds the mutex `t` waits for, or null.
const Thread* holder(const Thread& t) {
    if (t.state != ThreadState::Blocked || t.waiting_for_mutex == nullptr) {
        return nullptr;
    }
    return t.waiting_for_mutex->owner();
}

} // namespace

size_t describe_waits(void (*emit)(const char*, size_t, void*), void* ctx) {
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
        } else {
            return;
        }
        ++waiting;
        line.terminate('\0');
        emit(text, line.length(), ctx);
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
        emit(text, line.length(), ctx);
    });
    return waiting;
}

} // namespace core
