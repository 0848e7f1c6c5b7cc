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
    SysExit = 0,     // exit(code): ends the process, every thread of it, with `code` (int).
                     // Does not return.
    SysYield = 1,    // yield(): gives the CPU to another thread. Returns 0.
    SysSleep = 2,    // sleep(ns): blocks at least `ns` nanoseconds (<= kMaxSleepNs). Returns 0.
    SysLogWrite = 3, // log_write(buf, len): one kernel log line "user: NAME: TEXT" from `len`
                     // (<= kMaxLogBytes) bytes at `buf`; a trailing newline is dropped, other
                     // bytes outside printable ASCII are written as '?'. Returns len.
    // Handles and IPC (docs/user-space.md, "Handles and IPC"). A handle is a small integer
    // from 1, naming an object in the caller's handle table with some rights. A message is
    // kMessageWords words in RSI, RDX, R10 and an optional buffer: R8 its address, R9 the bytes
    // sent in its low 32 bits and the bytes that may be received into it in its high 32 bits
    // (each <= kMaxMessageBytes); a longer message is cut to the receiver's room, and the
    // result is the length sent.
    SysEndpointCreate = 4,     // endpoint_create(): a handle with the call and receive rights.
    SysCall = 5,               // call(h, w0, w1, w2, buf, sent | room << 32): sends, blocks until
                               // the reply. Returns its length; the reply's words in RSI, RDX, R10.
    SysRecv = 6,               // recv(h, -, -, -, buf, room << 32): blocks until a call comes.
                               // Returns its length; the caller's process id in RDI, words in RSI,
                               // RDX, R10. The caller waits for reply() from this process.
    SysReply = 7,              // reply(-, w0, w1, w2, buf, sent): answers the call received last.
                               // Returns 0.
    SysReplyRecv = 8,          // reply_recv(h, w0, w1, w2, buf, sent | room << 32): reply(), then
                               // recv() on h. Returns as recv().
    SysNotificationCreate = 9, // notification_create(): a handle with the signal and wait
                               // rights.
    SysSignal = 10,            // signal(h, bits): sets bits (not bit 63). Returns 0.
    SysWait = 11,              // wait(h): blocks until some bit is set, takes them all and
                               // returns them; PeerGone once no handle with the signal right
                               // is left and no bit is set.
    SysHandleClose = 12,       // handle_close(h): the handle names nothing from now on.
    // Anonymous memory, in [kMapBase, kMapEnd), page-aligned, never executable.
    SysMap = 13,   // map(addr, bytes, flags): fresh zeroed pages where none are mapped;
                   // flags: kMapWritable or 0. Returns addr.
    SysUnmap = 14, // unmap(addr, bytes): every page mapped by map(); their frames go back
                   // (and no thread of the process can reach them any more). Returns 0.
    // Threads (docs/user-space.md, "Threads").
    SysThreadStart = 15, // thread_start(entry, stack_top, arg): a new thread of the process
                         // enters user mode at `entry` with RSP at `stack_top` (16-byte aligned)
                         // and `arg` in RDI, every other register zeroed. Returns its number in
                         // the process (1 to kMaxThreads - 1; the first thread is 0); NoResources
                         // if kMaxThreads are live.
    SysThreadExit = 16,  // thread_exit(): ends the calling thread. The process ends (code 0)
                         // when its last thread ends. Does not return.
    SysCount = 17,
};

enum Errno : int64_t {
    NoSuchCall = 1,      // no system call has that number
    BadAddress = 2,      // a buffer is not (entirely) readable or writable user memory
    InvalidArgument = 3, // an argument out of range (too long, too late)
    BadHandle = 4,       // the handle names nothing in the caller's table
    WrongType = 5,       // the handle names an object of another type
    AccessDenied = 6,    // the handle lacks the right the call needs
    PeerGone = 7,        // nobody is left to answer (or to call): the peer ended
    NoReplyTarget = 8,   // reply with no call to answer, or recv while one is unanswered
    NoResources = 9,     // the handle table or the kernel's table of objects is full
};

inline constexpr uint64_t kMapBase = 0x0000'1000'0000'0000;
inline constexpr uint64_t kMapEnd = 0x0000'2000'0000'0000;
inline constexpr uint64_t kMapWritable = 1;
inline constexpr uint64_t kMaxMappedBytes = 4 * 1024 * 1024; // a process's, at once

inline constexpr uint64_t kMessageWords = 3;
inline constexpr uint64_t kMaxMessageBytes = 256;

inline constexpr uint64_t kMaxThreads = 8; // a process's live threads

inline constexpr uint64_t kMaxLogBytes = 200;
inline constexpr uint64_t kMaxSleepNs = 60'000'000'000; // one minute

// Where a program's stack ends (exclusive) and how large it is: the page at kStackTop stays
// unmapped, and so does the page below the stack.
inline constexpr uint64_t kStackTop = 0x0000'7fff'ffff'f000;
inline constexpr uint64_t kStackBytes = 16 * 1024;

// A program's argument block: the initrd file its sys/programs line names with `args=`, mapped
// read-only and never executable at kArgumentBase (nothing is mapped there without one). The
// program reads it as memory; what it holds is between the program and whoever wrote the file
// (the simulator's scenario processes: user/include/duet/script.hpp).
inline constexpr uint64_t kArgumentBase = 0x0000'7fff'0000'0000;
inline constexpr uint64_t kMaxArgumentBytes = 64 * 1024;

} // namespace duet_abi
