#pragma once

// A CPU's run queue: one FIFO list of runnable threads per priority level and a bitmap of the
// non-empty levels, so that picking the next thread is one bit scan, whatever the number of
// threads. Pure bookkeeping: the caller holds the queue's lock.

#include <core/lib/atomic.hpp>
#include <core/lib/panic.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core::sched {

inline constexpr unsigned kPriorityLevels = 8; // 0 lowest .. 7 highest
inline constexpr uint8_t kDefaultPriority = 4;

// The links a queued thread carries (intrusive: no allocation to queue a thread).
struct RunLink {
    RunLink* next = nullptr;
    RunLink* prev = nullptr;
    uint8_t priority = kDefaultPriority;
    bool queued = false;
    uint8_t queue = 0; // the id of the RunQueue it is in, while queued
};

class RunQueue {
public:
    constexpr explicit RunQueue(uint8_t id = 0) : m_id(id) {}

    uint8_t id() const { return m_id; }

    void push_back(RunLink* t) {
        List& l = m_levels[t->priority];
        t->next = nullptr;
        t->prev = l.tail;
        if (l.tail != nullptr) {
            l.tail->next = t;
        } else {
            l.head = t;
        }
        l.tail = t;
        t->queued = true;
        t->queue = m_id;
        m_nonempty |= 1u << t->priority;
        set_count(m_count + 1);
    }

    // Queues `t` to run before the others of its priority.
    void push_front(RunLink* t) {
        List& l = m_levels[t->priority];
        t->prev = nullptr;
        t->next = l.head;
        if (l.head != nullptr) {
            l.head->prev = t;
        } else {
            l.tail = t;
        }
        l.head = t;
        t->queued = true;
        t->queue = m_id;
        m_nonempty |= 1u << t->priority;
        set_count(m_count + 1);
    }

    void remove(RunLink* t) {
        ASSERT(t->queued && t->queue == m_id);
        List& l = m_levels[t->priority];
        if (t->prev != nullptr) {
            t->prev->next = t->next;
        } else {
            l.head = t->next;
        }
        if (t->next != nullptr) {
            t->next->prev = t->prev;
        } else {
            l.tail = t->prev;
        }
        t->next = t->prev = nullptr;
        t->queued = false;
        if (l.head == nullptr) {
            m_nonempty &= ~(1u << t->priority);
        }
        set_count(m_count - 1);
    }

    // The first thread of the highest non-empty level, without removing it; null if empty.
    RunLink* peek() const {
        if (m_nonempty == 0) {
            return nullptr;
        }
        return m_levels[top_level()].head;
    }

    // Removes and returns the first thread of the highest non-empty level; null if empty.
    // NOTE: finds the list through t->priority, not the level the bitmap gave: half the time
    // with 100,000 threads queued (docs/scheduler.md, "Pick-next").
    RunLink* pop() {
        RunLink* t = peek();
        if (t == nullptr) {
            return nullptr;
        }
        List& l = m_levels[t->priority];
        RunLink* next = t->next;
        l.head = next;
        if (next != nullptr) {
            next->prev = nullptr;
        } else {
            l.tail = nullptr;
            m_nonempty &= ~(1u << t->priority);
        }
        t->next = nullptr;
        t->queued = false;
        set_count(m_count - 1);
        return t;
    }

    // The highest priority queued, or -1 if empty.
    int top_priority() const { return m_nonempty == 0 ? -1 : static_cast<int>(top_level()); }
    // May be read without the lock, as a hint (placement, stealing).
    uint32_t count() const { return atomic::load<atomic::relaxed>(&m_count); }
    // The same for the holder of the queue's lock, which orders every change: a plain read.
    uint32_t count_locked() const { return m_count; }
    bool empty() const { return count() == 0; }

    // Walks a level from its head (stealing looks for a thread it may move). Null past the end.
    RunLink* first(unsigned level) const { return m_levels[level].head; }

    // Checks the lists against each other and the counters: null if they agree, else what is
    // wrong. Reads only; for the simulator's invariant checks (the lock must be free).
    const char* check() const {
        uint32_t total = 0;
        for (unsigned level = 0; level < kPriorityLevels; ++level) {
            const List& l = m_levels[level];
            if ((l.head != nullptr) != (((m_nonempty >> level) & 1) != 0)) {
                return "a level's bit in the bitmap disagrees with its list";
            }
            const RunLink* prev = nullptr;
            for (const RunLink* t = l.head; t != nullptr; t = t->next) {
                if (++total > m_count) {
                    return "more threads in the lists than the count (or a cycle)";
                }
                if (t->prev != prev) {
                    return "a thread's back link is wrong";
                }
                if (!t->queued || t->queue != m_id) {
                    return "a thread in the list is not marked as queued in it";
                }
                if (t->priority != level) {
                    return "a thread is in the list of another priority";
                }
                prev = t;
            }
            if (l.tail != prev) {
                return "a list's tail is not its last thread";
            }
        }
        if ((m_nonempty >> kPriorityLevels) != 0) {
            return "the bitmap has a bit beyond the priorities";
        }
        return total == m_count ? nullptr : "fewer threads in the lists than the count";
    }

private:
    struct List {
        RunLink* head = nullptr;
        RunLink* tail = nullptr;
    };
    unsigned top_level() const { return 31u - static_cast<unsigned>(__builtin_clz(m_nonempty)); }
    // NOTE: count() reads the count without the lock, so the lock's holder stores it
    // atomically (its own read needs nothing: no one else writes it).
    void set_count(uint32_t n) { atomic::store<atomic::relaxed>(&m_count, n); }

    List m_levels[kPriorityLevels];
    uint32_t m_nonempty = 0;
    uint32_t m_count = 0;
    uint8_t m_id;
};

} // namespace core::sched
