#pragma once

// The kernel's invariants, checked from outside: the simulator calls check_invariants()
// between steps, when every simulated CPU is stopped at a preemption point (docs/robustness.md).
//
// - frames: free + used + reserved = total, and the per-CPU caches agree with the counters;
// - run queues: each queue's lists agree with its count and bitmap; every runnable thread is
//   in exactly one queue (or on its way into one: being woken, spawned or stolen); every
//   queued thread is runnable; every running thread is its CPU's current one; every sleeper
//   is blocked and in its CPU's timer list in deadline order;
// - heap: every chunk, slab and per-CPU list against the counters.
//
// (Lock ranks and "no spinlock held across a switch" are checked by the kernel itself on every
// acquisition and every switch, on both machines.)
//
// A CPU can stop inside a critical section (spinning for a second lock while holding a
// first), so a structure whose lock some CPU holds is skipped that time, not reported.

#include <core/lib/line.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core {

class InvariantReport {
public:
    static constexpr size_t kCapacity = 256;

    InvariantReport() = default;
    InvariantReport(const InvariantReport&) = delete;
    InvariantReport& operator=(const InvariantReport&) = delete;

    // Starts the report of a broken invariant. The first one only: once a second starts,
    // nothing more is added. Returns *this for add().
    InvariantReport& fail(const char* what);
    InvariantReport& add(const char* s);
    InvariantReport& add(uint64_t n);

    bool broken() const { return m_broken; }
    const char* text() const { return m_text; }
    // Structures left unchecked because a CPU held their lock.
    uint32_t skipped() const { return m_skipped; }
    void skip() { ++m_skipped; }
    // Roughly how many things the checks looked at (threads, links, heap pages): what a
    // check costs, for spacing them out.
    uint64_t work() const { return m_work; }
    void did(uint64_t n) { m_work += n; }

private:
    char m_text[kCapacity] = {};
    LineBuffer m_line{m_text, kCapacity};
    bool m_broken = false;
    bool m_sealed = false;
    uint32_t m_skipped = 0;
    uint64_t m_work = 0;
};

// Checks everything above that no CPU is in the middle of changing. Reads only: takes no lock
// and calls no HAL function, so it runs on no simulated CPU. True when all checked holds.
bool check_invariants(InvariantReport& report);

} // namespace core
