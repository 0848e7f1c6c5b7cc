#pragma once

// Interrupt guards and spinlocks, RAII only.

#include <core/lib/atomic.hpp>
#include <core/lib/compiler.hpp>
#include <core/lib/panic.hpp>
#include <core/sync/lock_rank.hpp>

#include <hal/cpu.hpp>
#include <hal/irq.hpp>

namespace core {

class SpinLock;

// What a CPU holds and waits for, as spinlocks see it. It is the first member of the CPU's
// core::Cpu (core/cpu.hpp asserts it), so that a spinlock reaches it from hal::this_cpu()
// without knowing the rest of the CPU's data, which itself holds spinlocks.
struct CpuLocks {
    // The ranks of the spinlocks held (bit r: rank r), and the lock held at each. No two locks
    // of one rank are ever held together, so this is also what the CPU holds: the switch
    // asserts it is empty.
    uint32_t ranks_held = 0;
    const SpinLock* held[kLockRanks] = {};
    // The spinlock this CPU is spinning on, for reports of who waits for what.
    const SpinLock* waiting_for = nullptr;
};

// The calling CPU's locks, or null before its per-CPU data is installed. Inline: every
// spinlock asks, twice.
inline CpuLocks* this_cpu_locks() {
    // NOTE: a standard-layout struct and its first member are pointer-interconvertible.
    return reinterpret_cast<CpuLocks*>(hal::this_cpu());
}

// Disables interrupts for its lifetime; nests (like xv6's push_off/pop_off): only the
// outermost guard restores the state it found.
class InterruptGuard {
public:
    InterruptGuard() : m_flags(hal::irq_save()) {}
    InterruptGuard(const InterruptGuard&) = delete;
    InterruptGuard& operator=(const InterruptGuard&) = delete;
    ~InterruptGuard() { hal::irq_restore(m_flags); }

private:
    hal::IrqFlags m_flags;
};

class SpinLock {
public:
    class [[nodiscard]] Guard {
    public:
        Guard(const Guard&) = delete;
        Guard& operator=(const Guard&) = delete;
        ~Guard() {
            m_lock.release(m_cpu);
            hal::irq_restore(m_flags);
        }

    private:
        friend class SpinLock;
        explicit Guard(SpinLock& lock)
            : m_lock(lock), m_flags(hal::irq_save()), m_cpu(lock.acquire()) {}
        SpinLock& m_lock;
        hal::IrqFlags m_flags;
        // NOTE: the CPU that took it is the one that releases it (interrupts stay off and
        // nothing switches with a spinlock held): the guard remembers it rather than ask again.
        CpuLocks* m_cpu;
    };

    // Holds the lock for a caller that runs with interrupts off already and holds no other
    // spinlock (both asserted): the switch path, which saves no interrupt state twice and may
    // hold no lock across the switch.
    class [[nodiscard]] IrqsOffGuard {
    public:
        IrqsOffGuard(const IrqsOffGuard&) = delete;
        IrqsOffGuard& operator=(const IrqsOffGuard&) = delete;
        ~IrqsOffGuard() { m_lock.release(m_cpu); }

    private:
        friend class SpinLock;
        explicit IrqsOffGuard(SpinLock& lock) : m_lock(lock) {
            ASSERT(!hal::irq_enabled());
            m_cpu = lock.acquire(/*alone=*/true);
        }
        SpinLock& m_lock;
        CpuLocks* m_cpu; // as in Guard
    };

    constexpr SpinLock(const char* name, LockRank rank)
        : m_name(name), m_rank_bit(1u << static_cast<unsigned>(rank)),
          m_rank(static_cast<uint8_t>(rank)) {}
    SpinLock(const SpinLock&) = delete;
    SpinLock& operator=(const SpinLock&) = delete;

    // Takes the lock with interrupts disabled until the guard goes out of scope.
    Guard lock_irqsave() { return Guard(*this); }
    // Takes the lock; interrupts must be off already and stay off until the guard goes, and the
    // CPU must hold no other spinlock.
    IrqsOffGuard lock_irqs_off() { return IrqsOffGuard(*this); }

    void lock() { acquire(); }
    void unlock() { release(this_cpu_locks()); }

    bool is_locked() const { return atomic::load<atomic::relaxed>(&m_locked); }
    const char* name() const { return m_name; }
    LockRank rank() const { return static_cast<LockRank>(m_rank); }
    // Whether `c` holds it (for reports of who waits for what).
    bool held_by(const CpuLocks& c) const {
        return is_locked() && ((c.ranks_held >> m_rank) & 1) != 0 && c.held[m_rank] == this;
    }

private:
    // Takes the lock; returns the calling CPU's entry (null before per-CPU data exists).
    // `alone`: the caller must hold no other spinlock (a stricter check than the ranks').
    CpuLocks* acquire(bool alone = false) {
        CpuLocks* c = this_cpu_locks();
        // Checked before spinning: a wrong order is reported whether or not it would block.
        // (A rank held at or above this one: the mask is at least this rank's bit.)
        if (alone) {
            ASSERT(c == nullptr || c->ranks_held == 0);
        } else if (c != nullptr && c->ranks_held >= m_rank_bit) [[unlikely]] {
            lock_order_violation(*c, *this);
        }
        if (atomic::exchange<atomic::acquire>(&m_locked, true)) [[unlikely]] {
            spin(c);
        }
        if (c != nullptr) {
            // NOTE: what a CPU holds is known from its side only (reports look there for a
            // lock's holder): the lock itself stays one flag.
            c->ranks_held |= m_rank_bit;
            c->held[m_rank] = this; // stale once released: ranks_held says which count
        }
        return c;
    }

    // Releases the lock `c` (what acquire() returned) holds.
    void release(CpuLocks* c) {
        if (c != nullptr) {
            ASSERT((c->ranks_held & m_rank_bit) != 0);
            c->ranks_held &= ~m_rank_bit;
        }
        atomic::store<atomic::release>(&m_locked, false);
    }

    // Waits until the lock is free and takes it; `c` (if not null) says what it waits for.
    NOINLINE void spin(CpuLocks* c) {
        if (c != nullptr) {
            c->waiting_for = this;
        }
        do {
            while (atomic::load<atomic::relaxed>(&m_locked)) {
                hal::cpu_relax();
            }
        } while (atomic::exchange<atomic::acquire>(&m_locked, true));
        if (c != nullptr) {
            c->waiting_for = nullptr;
        }
    }

    // Panics: `c` holds a lock whose rank is not below `taking`'s.
    [[noreturn]] static void lock_order_violation(const CpuLocks& c, const SpinLock& taking);

    const char* m_name;
    uint32_t m_rank_bit; // 1 << m_rank: what lock() and unlock() test and change
    uint8_t m_rank;
    bool m_locked = false;
};

} // namespace core
