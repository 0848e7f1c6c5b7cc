#pragma once

// The system-call ABI, shared by the kernel and the user runtime (user/): numbers and errors.
// No dependencies, so that user programs include it as it is. docs/user-space.md describes
// the calling convention:
//
//   RAX  the call's number; on return, its result: >= 0 success, < 0 minus an Errno
//   RDI, RSI, RDX, R10, R8, R9  arguments 0-5
//   RCX, R11  clobbered (SYSCALL keeps the return address and the flags there); every other
//             register is preserved
//
// An unknown number returns -NoSuchCall; a call never kills its caller for bad arguments.

#include <stdint.h>

namespace duet_abi {

enum Syscall : uint64_t {
    SysExit = 0,     // exit(code): ends the process with `code` (int). Does not return.
    SysYield = 1,    // yield(): gives the CPU to another thread. Returns 0.
    SysSleep = 2,    // sleep(ns): blocks at least `ns` nanoseconds (<= kMaxSleepNs). Returns 0.
    SysLogWrite = 3, // log_write(buf, len): one kernel log line "user: NAME: TEXT" from `len`
                     // (<= kMaxLogBytes) bytes at `buf`; a trailing newline is dropped, other
                     // bytes outside printable ASCII are written as '?'. Returns len.
    SysCount = 4,
};

enum Errno : int64_t {
    NoSuchCall = 1,      // no system call has that number
    BadAddress = 2,      // a buffer is not (entirely) readable or writable user memory
    InvalidArgument = 3, // an argument out of range (too long, too late)
};

inline constexpr uint64_t kMaxLogBytes = 200;
inline constexpr uint64_t kMaxSleepNs = 60'000'000'000; // one minute

// Where a program's stack ends (exclusive) and how large it is: the page at kStackTop stays
// unmapped, and so does the page below the stack.
inline constexpr uint64_t kStackTop = 0x0000'7fff'ffff'f000;
inline constexpr uint64_t kStackBytes = 16 * 1024;

} // namespace duet_abi
