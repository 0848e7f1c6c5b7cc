#pragma once

// Processes: a user address space (its user half its own, the kernel half the kernel's) and
// the threads that run a program in it, loaded from a static ELF64 file (core/user/elf.hpp).
// The first thread starts at the program's entry point; it and the others start more with
// thread_start (at most kMaxThreads at once). The process ends when its last thread ends
// (thread_exit), or at once when any thread calls exit or faults: the others are then stopped
// on their way back to user mode (docs/user-space.md, "Threads").
//
// Who calls what: a kernel thread creates and starts a process, then waits for it; wait()
// returns every frame the process had (its tables, its pages and its threads' kernel stacks).
// The backends call on_syscall(), on_user_fault() and on_return_to_user() (hal/user.hpp).

#include <core/lib/result.hpp>
#include <core/mm/address_space.hpp>
#include <core/sched/thread.hpp>
#include <core/sync/spinlock.hpp>
#include <core/user/abi.hpp>
#include <core/user/elf.hpp>
#include <core/user/ipc.hpp>

#include <hal/types.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core {
struct Cpu;
}

namespace core::user {

inline constexpr size_t kMaxProcesses = 64;
inline constexpr size_t kProcessNameLength = 16;
inline constexpr size_t kMaxThreads = duet_abi::kMaxThreads; // a process's, at once

enum class ProcessState : uint8_t {
    Free,    // an unused slot
    Loaded,  // created, its first thread not started
    Running, // its first thread started
    Dead,    // its last thread ended (or it was killed); wait() has not reaped it yet
};

struct Process;

enum class ThreadSlot : uint8_t {
    Free,  // unused
    Live,  // started, not ended
    Ended, // ended; its kernel thread is joined when the slot is taken again, or by wait()
};

// One of a process's threads: its kernel thread, and its part in IPC.
struct UserThread {
    Process* process = nullptr;
    ThreadSlot state = ThreadSlot::Free;
    sched::ThreadId id;
    sched::Thread* runner = nullptr; // the kernel thread, once it has started (it sets this)
    // Where it enters user mode (thread_start's arguments; the first thread's are the
    // program's entry point and stack).
    uint64_t entry = 0;
    uint64_t stack_top = 0;
    uint64_t arg = 0;
    uint64_t syscalls = 0; // by its own thread only; added to the process's as it ends
    ipc::IpcState ipc;
};

struct Process {
    uint32_t id = 0; // unique in a run, from 1
    ProcessState state = ProcessState::Free;
    bool killed = false;
    int exit_code = 0;
    char name[kProcessNameLength] = {};
    // The program's file name (the initrd path's last part): the name unless sys/programs
    // gave another. The simulator runs the host build of that program.
    char program[kProcessNameLength] = {};
    mm::AddressSpace space;
    uint64_t entry = 0;
    // Set once, by the thread that ends the process (exit, a fault): every other thread ends
    // on its way back to user mode, and none is started from then on. Read with atomics.
    bool dying = false;
    uint32_t live_threads = 0; // changed under the process's lock (lock_of()); read atomically
    UserThread threads[kMaxThreads];
    uint64_t syscalls = 0;     // its ended threads' (atomic)
    uint64_t mapped_pages = 0; // by map(), not yet unmapped
    // hal::cycle_count() as its thread first left for user mode, and as the process ended.
    uint64_t entered_user_at = 0;
    uint64_t ended_at = 0;
    ipc::HandleSlot handles[ipc::kMaxHandles]; // under the process's lock
};

// Process `p`'s lock: its handle table and its threads' slots. NOTE: beside the table, not in
// Process, so that a slot is reset by assigning a fresh Process.
SpinLock& lock_of(const Process* p);

// Why create() failed: the program (elf::describe()) or the kernel (Error).
struct CreateError {
    Error error = Error::InvalidArgument;
    elf::Error elf = elf::Error::None; // set when error is InvalidArgument because of the file
};

// Loads the program `file` (`size` bytes) into a new address space with a stack
// (duet_abi::kStackTop, kStackBytes) and, if `args_size` is not 0, the argument block `args`
// (at most duet_abi::kMaxArgumentBytes; read-only at duet_abi::kArgumentBase). Thread or boot
// context. `program` is the file's name (Process::program), if not `name`. On failure nothing
// is left allocated: `why` says what was wrong.
[[nodiscard]] Result<Process*> create(const char* name, const uint8_t* file, size_t size,
                                      CreateError* why, const uint8_t* args = nullptr,
                                      size_t args_size = 0, const char* program = nullptr);

// Starts the process's first thread, which enters user mode at the program's entry point. On
// failure (no thread could be had) the process stays Loaded and may be destroyed with wait().
[[nodiscard]] Result<void> start(Process* p);

struct ExitStatus {
    int code = 0;
    bool killed = false;
    uint64_t syscalls = 0;
    // hal::cycle_count()'s advance from the first entry into user mode to the end (exit or
    // kill): what the process cost, the kernel's work for it included; 0 if it never ran.
    uint64_t cycles = 0;
};

// Waits for every thread of the process to end (if it was started), returns every frame of
// its address space, and frees the slot. Thread context.
ExitStatus wait(Process* p);

// The calling thread's process, or null for a kernel thread.
Process* current();

// The user thread `t` runs, or null for a kernel thread. Without a lock: for reports.
const UserThread* user_thread_of(const sched::Thread& t);

// The process in slot `number` (sched::Thread::process: from 1), or null if the slot is free or
// out of range. Without the table's lock: for reports.
const Process* process_by_number(uint32_t number);

// Counters over the run (the init thread logs them after the programs).
struct Stats {
    uint64_t created = 0;
    uint64_t started = 0;
    uint64_t exited = 0;
    uint64_t failed = 0; // exited with a code other than 0
    uint64_t killed = 0;
    uint64_t syscalls = 0;
    uint64_t bad_addresses = 0; // system calls that got -BadAddress
};
Stats stats();

// The switch path's part (core/sched/switch.cpp): loads the address space `next` runs in on
// `me` if another is loaded (a kernel thread runs in the kernel's), and, for a user thread,
// the stack the CPU enters the kernel on. Interrupts off.
void switch_to(Cpu& me, const sched::Thread& next);

// What a system call brings (hal/user.hpp): its number and six arguments.
struct SyscallArgs {
    uint64_t number = 0;
    uint64_t args[6] = {};
};

// The system-call dispatcher (core/user/abi.hpp has the numbers): the result for the return
// register. Called by the backend on the calling thread's kernel stack, interrupts enabled.
// Calls that return values in argument registers (the IPC calls) write them into `call.args`;
// the backend hands them back to user mode in those registers.
int64_t on_syscall(SyscallArgs& call);

// A fault in user mode: what the backend knows of it.
struct UserFault {
    uint32_t vector = 0;     // the x86 exception vector (14 page fault, 13 general protection)
    uint32_t error_code = 0; // the exception's error code (page fault: the architectural bits)
    hal::VirtAddr address;   // a page fault's address (CR2)
    uint64_t ip = 0;         // where the user code was
};

// Kills the calling thread's process with a report line (address, access, process, thread)
// and ends the thread. Called by the backend on the thread's kernel stack, interrupts off.
[[noreturn]] void on_user_fault(const UserFault& fault);

// The calling thread goes back to user mode from an interrupt taken there: if its process is
// ending, the thread ends here instead. Called by the backend on the thread's kernel stack,
// interrupts off. (The system-call path checks the same on its own.)
void on_return_to_user();

} // namespace core::user
