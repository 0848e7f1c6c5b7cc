#pragma once

// The order spinlocks are taken in. A CPU may take a lock only if every lock it holds has a
// lower rank; two locks of one rank are never held together. SpinLock::lock() checks it on
// every acquisition, on both machines, and panics naming both locks: an order that could
// deadlock is reported the first time it happens, not the one time in a million it deadlocks.

#include <stdint.h>

namespace core {

enum class LockRank : uint8_t {
    Process,     // a process's handles and threads (core/user/process.cpp); then an object's
    WaitQueue,   // a wait queue's (and so a mutex's or semaphore's); wakes after releasing it
    IpcObject,   // an endpoint's or a notification's (core/user/ipc.cpp); wakes after it
    IpcTable,    // the endpoint and notification tables (reference counts); taken alone
    SmpOnline,   // bring-up's count of CPUs online
    ThreadTable, // takes frames for a new chunk of thread slots
    KernelSpace, // takes frames for stacks and page tables
    Heap,        // takes frames for chunks
    RunQueue,    // a CPU's run queue and sleepers; one CPU's at a time
    Frames,      // the frame allocator's
    LockOrder,   // the workload's lock-order graph (sync/lock_order.hpp); taken alone
    Processes,   // the process table (core/user/process.cpp); taken alone
    Console,     // last: anything may log, a panic included
    Test,        // for tests, above everything
};

inline constexpr unsigned kLockRanks = static_cast<unsigned>(LockRank::Test) + 1;

const char* describe(LockRank rank);

} // namespace core
