#pragma once

/// @file
/// User mode: entering it, coming back through a system call or a fault, and touching user
/// memory from the kernel. The core owns processes and their address spaces
/// (core/include/core/user/process.hpp); the backend owns the privilege switch.
///
/// The backend calls back into the core with:
/// - `core::user::on_syscall(SyscallArgs&)` for every system call, on the calling thread's
///   kernel stack in kernel mode, interrupts enabled; its result goes back in the return
///   register;
/// - `core::user::on_user_fault(const UserFault&)` when code in user mode faults (a page fault,
///   a general-protection fault, any exception): on the thread's kernel stack, interrupts off;
///   it does not return (the process is killed);
/// - `core::user::on_return_to_user()` before it returns to user mode from an interrupt taken
///   there, interrupts off: the thread may end there (its process is ending).

#include <hal/types.hpp>

namespace hal {

/// Leaves the kernel for user mode for the first time on the calling thread: runs the code at
/// `entry` in ring 3 with the stack pointer at `stack_top` and `arg` in the first argument
/// register, every other register zeroed, interrupts enabled. The calling thread's address
/// space (loaded by the core's switch path) must map both. The thread's kernel stack becomes
/// the one the CPU enters the kernel on from user mode (set_kernel_stack()). Thread context,
/// any interrupt state; never returns: the thread comes back into the kernel only through a
/// system call or a fault, and ends in the core.
///
/// Simulator: user programs are host code linked into the simulator; at the process's entry
/// point (core::user::Process::entry) the backend runs the host build of its program (found by
/// the program's name) in the thread's fiber in user mode, and stops the run with a panic line
/// if there is none. Any other `entry` is a thread the program started: the host function
/// `void(uint64_t)` at that address (the program's host build passed it), called with `arg`;
/// the thread ends (thread_exit) when it returns.
[[noreturn]] void enter_user(VirtAddr entry, VirtAddr stack_top, uint64_t arg);

/// The stack the calling CPU enters the kernel on from user mode from now on (the TSS's RSP0
/// and the system-call entry's stack): the top of the kernel stack of the user thread about
/// to run. Called by the core's switch path before it switches to a user thread, interrupts
/// off. Simulator: nothing (a fiber enters the kernel on its own stack).
void set_kernel_stack(VirtAddr top);

/// Copies `bytes` bytes from user address `src` in the calling CPU's current address space to
/// the kernel buffer `dst`. Returns false, having copied some prefix or nothing, if any byte of
/// the source is not a readable user page or lies outside the user half (a kernel or
/// non-canonical address, or a range that wraps): never a kernel fault. Thread context, any
/// interrupt state (a fault is resolved without sleeping). Bare metal: the access runs with
/// SMAP lifted (STAC/CLAC) and an exception fix-up turns a page fault into the failure.
/// Simulator: every page is checked by walking the current tables with the user's rights.
[[nodiscard]] bool copy_from_user(void* dst, VirtAddr src, size_t bytes);

/// Copies `bytes` bytes from the kernel buffer `src` to user address `dst`, which must be
/// writable user pages; otherwise as copy_from_user() (false, possibly after a prefix).
[[nodiscard]] bool copy_to_user(VirtAddr dst, const void* src, size_t bytes);

/// Whether the calling CPU enforces SMEP and SMAP (the kernel never executes or touches user
/// pages outside the copy routines). For the boot log. Any context.
bool user_protection_smep();
bool user_protection_smap();

} // namespace hal
