#pragma once

// Blocking: wait queues, and the sleeping mutex and semaphore built on them. A thread that
// waits gives its CPU away until it is woken; nothing here spins for long.

#include <core/sync/spinlock.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core {

namespace sched {
struct Thread;
}

class WaitQueue {
public:
    constexpr explicit WaitQueue(const char* name) : m_lock(name, LockRank::WaitQueue) {}
    WaitQueue(const WaitQueue&) = delete;
    WaitQueue& operator=(const WaitQueue&) = delete;

    // Blocks the calling thread until `ready()` holds. `ready` runs with the queue's lock held
    // and interrupts off, before blocking and after every wake-up.
    template <typename Ready>
    void wait_until(Ready ready) {
        for (;;) {
            InterruptGuard irq;
            {
                auto guard = m_lock.lock_irqsave();
                if (ready()) {
                    return;
                }
                enqueue_current();
            }
            block_current();
        }
    }

    // Wakes the longest waiter; false if there was none.
    bool wake_one();
    // Wakes every waiter; how many there were.
    size_t wake_all();

    // For the mutex and semaphore: the lock, and queue operations under it.
    SpinLock& lock() { return m_lock; }
    void enqueue_current();   // lock held: the calling thread waits here (Blocked)
    sched::Thread* dequeue(); // lock held: the longest waiter, or null
    bool empty() const { return m_head == nullptr; }
    const char* name() const { return m_lock.name(); }

    // Gives the CPU away until woken (interrupts off, no spinlock held).
    static void block_current();

    // Hand-off, for the mutex and semaphore: the waker gives the thing waited for (the mutex,
    // a token) to the longest waiter before waking it, so nobody can take it in between.
    void enqueue_for_handoff();                   // lock held: the caller waits to be handed it
    sched::Thread* dequeue_for_handoff();         // lock held: the waiter handed it, or null
    static void wait_for_handoff();               // lock released, interrupts off: until handed it
    static void finish_handoff(sched::Thread* t); // lock released: wakes `t` (null: nobody)

private:
    SpinLock m_lock;
    sched::Thread* m_head = nullptr;
    sched::Thread* m_tail = nullptr;
};

// A sleeping mutex: waiters block; unlock hands the mutex to the longest waiter (FIFO, so no
// waiter starves).
class Mutex {
public:
    constexpr explicit Mutex(const char* name) : m_waiters(name) {}
    void lock();
    void unlock();
    bool held_by_current() const;
    // The thread that holds it, or null: for reports of who waits for what (read without the
    // lock, once the machine has stopped).
    const sched::Thread* owner() const { return m_owner; }
    // Its name in reports: the label if one was given, else its queue's name.
    const char* name() const { return m_label != nullptr ? m_label : m_waiters.name(); }
    void set_label(const char* label) { m_label = label; }

private:
    WaitQueue m_waiters;
    sched::Thread* m_owner = nullptr;
    const char* m_label = nullptr;
};

// A counting semaphore (the scenario language's "event"): signal() adds a token or hands it
// to the longest waiter; wait() takes one or blocks until it is handed one.
class Semaphore {
public:
    constexpr explicit Semaphore(const char* name, uint64_t tokens = 0)
        : m_waiters(name), m_tokens(tokens) {}
    void wait();
    void signal();
    uint64_t tokens() const { return m_tokens; }
    const char* name() const { return m_label != nullptr ? m_label : m_waiters.name(); }
    void set_label(const char* label) { m_label = label; }

private:
    WaitQueue m_waiters;
    uint64_t m_tokens;
    const char* m_label = nullptr;
};

} // namespace core
