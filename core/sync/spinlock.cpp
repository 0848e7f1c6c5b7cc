#include <core/cpu.hpp>
#include <core/lib/line.hpp>
#include <core/sync/spinlock.hpp>

#include <hal/irq.hpp>
#include <hal/serial.hpp>
#include <hal/stop.hpp>

namespace core {

const char* describe(LockRank rank) {
    switch (rank) {
    case LockRank::Process:
        return "process";
    case LockRank::WaitQueue:
        return "wait-queue";
    case LockRank::IpcObject:
        return "ipc-object";
    case LockRank::IpcTable:
        return "ipc-table";
    case LockRank::SmpOnline:
        return "smp-online";
    case LockRank::ThreadTable:
        return "thread-table";
    case LockRank::KernelSpace:
        return "kernel-space";
    case LockRank::Heap:
        return "heap";
    case LockRank::RunQueue:
        return "run-queue";
    case LockRank::Frames:
        return "frames";
    case LockRank::LockOrder:
        return "lock-order";
    case LockRank::Processes:
        return "processes";
    case LockRank::Console:
        return "console";
    case LockRank::Test:
        return "test";
    }
    return "unknown";
}

void SpinLock::lock_order_violation(const CpuLocks& c, const SpinLock& taking) {
    (void)hal::irq_save();
    // The highest-ranked lock held names the conflict best: it is the one taken last.
    const SpinLock* held = nullptr;
    for (unsigned r = kLockRanks; r-- > taking.m_rank;) {
        if ((c.ranks_held >> r) & 1) {
            held = c.held[r];
            break;
        }
    }
    // NOTE: written straight to the serial port, not through LogLine: the log takes the
    // console lock, and a report of a lock-order bug must not take locks (the console may be
    // the one in question).
    char text[160];
    LineBuffer line(text, sizeof text);
    line.str("panic: lock order: cpu ")
        .dec(reinterpret_cast<const Cpu&>(c).index)
        .str(" takes '")
        .str(taking.name())
        .str("' (rank ")
        .str(describe(taking.rank()))
        .str(") while holding '")
        .str(held != nullptr ? held->name() : "?")
        .str("' (rank ")
        .str(held != nullptr ? describe(held->rank()) : "?")
        .str(")");
    line.terminate('\n');
    hal::serial_write(text, line.length() + 1);
    hal::halt_machine(hal::ExitCode::Panic);
}

} // namespace core
