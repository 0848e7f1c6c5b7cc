#include <core/lib/atomic.hpp>
#include <core/sched/scheduler.hpp>
#include <core/sched/thread.hpp>
#include <core/sync/wait_queue.hpp>

namespace core {

using sched::current;
using sched::preempt_if_needed;
using sched::schedule;
using sched::Thread;
using sched::ThreadState;
using sched::wake;

void WaitQueue::enqueue_current() {
    Thread* me = current();
    me->wait_next = nullptr;
    if (m_tail != nullptr) {
        m_tail->wait_next = me;
    } else {
        m_head = me;
    }
    m_tail = me;
    me->cpu_bound = false;
    atomic::store<atomic::release>(&me->state, ThreadState::Blocked);
}

Thread* WaitQueue::dequeue() {
    Thread* t = m_head;
    if (t != nullptr) {
        m_head = t->wait_next;
        if (m_head == nullptr) {
            m_tail = nullptr;
        }
        t->wait_next = nullptr;
    }
    return t;
}

void WaitQueue::block_current() {
    schedule();
}

void WaitQueue::enqueue_for_handoff() {
    current()->handoff = false;
    enqueue_current();
}

Thread* WaitQueue::dequeue_for_handoff() {
    Thread* t = dequeue();
    if (t != nullptr) {
        atomic::store<atomic::release>(&t->handoff, true);
    }
    return t;
}

void WaitQueue::wait_for_handoff() {
    Thread* me = current();
    do {
        block_current();
    } while (!atomic::load<atomic::acquire>(&me->handoff));
    me->handoff = false;
}

void WaitQueue::finish_handoff(Thread* t) {
    if (t != nullptr) {
        wake(t);
        preempt_if_needed();
    }
}

bool WaitQueue::wake_one() {
    Thread* t;
    {
        auto guard = m_lock.lock_irqsave();
        t = dequeue();
    }
    if (t == nullptr) {
        return false;
    }
    wake(t);
    preempt_if_needed();
    return true;
}

size_t WaitQueue::wake_all() {
    size_t n = 0;
    for (;;) {
        Thread* t;
        {
            auto guard = m_lock.lock_irqsave();
            t = dequeue();
        }
        if (t == nullptr) {
            break;
        }
        wake(t);
        ++n;
    }
    preempt_if_needed();
    return n;
}

void Mutex::lock() {
    InterruptGuard irq;
    Thread* me = current();
    {
        auto guard = m_waiters.lock().lock_irqsave();
        if (m_owner == nullptr) {
            m_owner = me;
            return;
        }
        me->waiting_for_mutex = this;
        m_waiters.enqueue_for_handoff();
    }
    // unlock() hands the mutex over before waking us: when we run again it is ours.
    WaitQueue::wait_for_handoff();
    me->waiting_for_mutex = nullptr;
}

void Mutex::unlock() {
    Thread* next;
    {
        auto guard = m_waiters.lock().lock_irqsave();
        ASSERT(m_owner == current());
        next = m_waiters.dequeue_for_handoff();
        m_owner = next;
    }
    WaitQueue::finish_handoff(next);
}

bool Mutex::held_by_current() const {
    return m_owner == current();
}

void Semaphore::wait() {
    InterruptGuard irq;
    {
        auto guard = m_waiters.lock().lock_irqsave();
        if (m_tokens > 0) {
            --m_tokens;
            return;
        }
        current()->waiting_for_event = this;
        m_waiters.enqueue_for_handoff();
    }
    WaitQueue::wait_for_handoff();
    current()->waiting_for_event = nullptr;
}

void Semaphore::signal() {
    Thread* next;
    {
        auto guard = m_waiters.lock().lock_irqsave();
        next = m_waiters.dequeue_for_handoff();
        if (next == nullptr) {
            ++m_tokens;
        }
    }
    WaitQueue::finish_handoff(next);
}

} // namespace core
