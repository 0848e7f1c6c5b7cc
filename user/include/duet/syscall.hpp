#pragma once

// The user runtime: system calls and the few memory accesses a program makes on purpose at an
// address it was not given. Two builds of one program source:
//
// - bare metal (static ELF, ring 3): one inline SYSCALL per call, with the kernel's ABI
//   (core/include/core/user/abi.hpp: number in RAX, arguments in RDI, RSI, RDX, R10, R8, R9,
//   result in RAX, RCX and R11 clobbered), and plain loads;
// - the simulator (DUET_USER_HOST: host code linked into it, run in the thread's fiber in
//   user mode): the same calls through hal/sim/user.cpp's system-call entry, and every access
//   to the program's own simulated memory through the simulated MMU with the user's rights.
//
// So that a buffer handed to the kernel is user memory on both machines, log() first copies
// its text to the top of the program's stack (a user store, checked in the simulator) and
// hands the kernel that address.

#include <core/user/abi.hpp>

#include <stddef.h>
#include <stdint.h>

#if !defined(DUET_USER_HOST)
// What runtime/start.S calls. NOTE: declared with C linkage because clang, unlike GCC, gives
// main() a C++ name when it compiles freestanding.
extern "C" int main();
// runtime/start.S: where a thread the program starts enters user mode (duet::start_thread).
extern "C" void duet_thread_entry();
#endif

#if defined(DUET_USER_HOST)
extern "C" {
// hal/sim/user.cpp. A fault in a user access kills the process (it does not return).
// `args`: the six argument registers, in and out.
int64_t duet_sim_syscall(uint64_t number, uint64_t* args);
void duet_sim_user_compute(uint64_t ns);
void duet_sim_user_store(uint64_t va, const void* src, uint64_t bytes);
void duet_sim_user_load(uint64_t va, void* dst, uint64_t bytes);
uint64_t duet_sim_user_load64(uint64_t va);
}
#endif

namespace duet {

// The top 1 KiB of the stack is not frames (runtime/start.S): log() puts its text at
// kScratch, and IPC messages' buffers are kSendBuffer and kReceiveBuffer (kMaxMessageBytes
// each), so that they are user memory on both machines.
inline constexpr uint64_t kScratch = duet_abi::kStackTop - 1024;
inline constexpr uint64_t kSendBuffer = duet_abi::kStackTop - 512;
inline constexpr uint64_t kReceiveBuffer = duet_abi::kStackTop - 256;
static_assert(duet_abi::kMaxMessageBytes <= 256);

// A thread's own user memory at the top of its stack: for the first thread, kScratch,
// kSendBuffer and kReceiveBuffer. Threads that log or pass messages at once need one each
// (start_thread leaves the top 1 KiB of a new thread's stack for it).
struct Area {
    uint64_t top = duet_abi::kStackTop; // the stack's end (exclusive), 16-byte aligned
    uint64_t scratch() const { return top - 1024; }
    uint64_t send_buffer() const { return top - 512; }
    uint64_t receive_buffer() const { return top - 256; }
};

#if defined(DUET_USER_HOST)
// All six argument registers in and out (the IPC calls return values in them).
inline int64_t syscall6(uint64_t number, uint64_t (&args)[6]) {
    return duet_sim_syscall(number, args);
}
inline int64_t syscall2(uint64_t number, uint64_t a0, uint64_t a1) {
    uint64_t args[6] = {a0, a1, 0, 0, 0, 0};
    return duet_sim_syscall(number, args);
}
inline void store(uint64_t va, const void* src, uint64_t bytes) {
    duet_sim_user_store(va, src, bytes);
}
inline void load(uint64_t va, void* dst, uint64_t bytes) {
    duet_sim_user_load(va, dst, bytes);
}
inline uint64_t load64(uint64_t va) {
    return duet_sim_user_load64(va);
}
#else
inline int64_t syscall6(uint64_t number, uint64_t (&args)[6]) {
    uint64_t rax = number;
    register uint64_t r10 asm("r10") = args[3];
    register uint64_t r8 asm("r8") = args[4];
    register uint64_t r9 asm("r9") = args[5];
    asm volatile("syscall"
                 : "+a"(rax), "+D"(args[0]), "+S"(args[1]), "+d"(args[2]), "+r"(r10), "+r"(r8),
                   "+r"(r9)
                 :
                 : "rcx", "r11", "memory");
    args[3] = r10;
    args[4] = r8;
    args[5] = r9;
    return static_cast<int64_t>(rax);
}
inline int64_t syscall2(uint64_t number, uint64_t a0, uint64_t a1) {
    int64_t r;
    asm volatile("syscall" : "=a"(r) : "a"(number), "D"(a0), "S"(a1) : "rcx", "r11", "memory");
    return r;
}
inline void store(uint64_t va, const void* src, uint64_t bytes) {
    auto* d = reinterpret_cast<volatile uint8_t*>(va);
    const auto* s = static_cast<const uint8_t*>(src);
    for (uint64_t i = 0; i < bytes; ++i) {
        d[i] = s[i];
    }
}
inline uint64_t load64(uint64_t va) {
    return *reinterpret_cast<volatile const uint64_t*>(va);
}
inline void load(uint64_t va, void* dst, uint64_t bytes) {
    const auto* s = reinterpret_cast<volatile const uint8_t*>(va);
    auto* d = static_cast<uint8_t*>(dst);
    for (uint64_t i = 0; i < bytes; ++i) {
        d[i] = s[i];
    }
}
#endif

// Computes for about `ns` nanoseconds in user mode, where interrupts may preempt it. The
// simulator: exactly `ns` of virtual time. The machine: a loop of `ns` iterations, which a
// program cannot time (RDTSC faults in ring 3): about `ns` on hardware, several times that under
// QEMU's TCG.
inline void compute(uint64_t ns) {
#if defined(DUET_USER_HOST)
    duet_sim_user_compute(ns);
#else
    for (uint64_t i = 0; i < ns; ++i) {
        asm volatile("" ::: "memory"); // a loop the compiler keeps
    }
#endif
}

inline int64_t syscall0(uint64_t number) {
    return syscall2(number, 0, 0);
}

inline int64_t syscall1(uint64_t number, uint64_t a0) {
    return syscall2(number, a0, 0);
}

[[noreturn]] inline void exit(int code) {
    syscall1(duet_abi::SysExit, static_cast<uint64_t>(static_cast<int64_t>(code)));
    __builtin_unreachable();
}

inline void yield() {
    syscall0(duet_abi::SysYield);
}

inline int64_t sleep_ns(uint64_t ns) {
    return syscall1(duet_abi::SysSleep, ns);
}

// The raw call: any address, so that programs can hand the kernel bad ones on purpose.
inline int64_t log_write(uint64_t buf, uint64_t len) {
    return syscall2(duet_abi::SysLogWrite, buf, len);
}

inline size_t length(const char* s) {
    size_t n = 0;
    while (s[n] != '\0') {
        ++n;
    }
    return n;
}

// Logs `text` (at most duet_abi::kMaxLogBytes bytes) from `area`'s scratch memory: by default
// the first thread's.
inline int64_t log(const Area& area, const char* text) {
    size_t n = length(text);
    if (n > duet_abi::kMaxLogBytes) {
        n = duet_abi::kMaxLogBytes;
    }
    store(area.scratch(), text, n);
    return log_write(area.scratch(), n);
}
inline int64_t log(const char* text) {
    return log(Area{}, text);
}

// Logs `text` followed by `n` in decimal (no formatting library in user space).
inline int64_t log_number(const Area& area, const char* text, uint64_t n) {
    char line[96];
    size_t at = 0;
    for (const char* c = text; *c != '\0' && at < 72; ++c) {
        line[at++] = *c;
    }
    char digits[20];
    size_t d = 0;
    do {
        digits[d++] = static_cast<char>('0' + n % 10);
        n /= 10;
    } while (n != 0);
    while (d > 0) {
        line[at++] = digits[--d];
    }
    line[at] = '\0';
    return log(area, line);
}
inline int64_t log_number(const char* text, uint64_t n) {
    return log_number(Area{}, text, n);
}

// --- anonymous memory ---

inline int64_t map(uint64_t addr, uint64_t bytes, uint64_t flags) {
    uint64_t args[6] = {addr, bytes, flags, 0, 0, 0};
    return syscall6(duet_abi::SysMap, args);
}
inline int64_t unmap(uint64_t addr, uint64_t bytes) {
    return syscall2(duet_abi::SysUnmap, addr, bytes);
}

// --- handles and IPC (docs/user-space.md, "Handles and IPC") ---

// A message: words in registers, and a buffer at a user address (or none).
struct Message {
    uint64_t words[duet_abi::kMessageWords] = {};
    uint64_t buffer = 0; // a user address
    uint32_t sent = 0;   // bytes sent from it
    uint32_t room = 0;   // bytes that may be received into it
    uint64_t sender = 0; // recv, reply_recv: the caller's process id
};

inline uint64_t buffer_word(const Message& m) {
    return uint64_t{m.sent} | uint64_t{m.room} << 32;
}

// Runs IPC call `number` on handle `h` with `m`'s words and buffer; the words that come back
// (and the sender) go into `m`.
inline int64_t ipc(uint64_t number, uint64_t h, Message& m) {
    uint64_t args[6] = {h, m.words[0], m.words[1], m.words[2], m.buffer, buffer_word(m)};
    int64_t r = syscall6(number, args);
    m.sender = args[0];
    for (uint64_t i = 0; i < duet_abi::kMessageWords; ++i) {
        m.words[i] = args[1 + i];
    }
    return r;
}

inline int64_t endpoint_create() {
    return syscall0(duet_abi::SysEndpointCreate);
}
inline int64_t call(uint64_t h, Message& m) {
    return ipc(duet_abi::SysCall, h, m);
}
inline int64_t recv(uint64_t h, Message& m) {
    return ipc(duet_abi::SysRecv, h, m);
}
inline int64_t reply(Message& m) {
    return ipc(duet_abi::SysReply, 0, m);
}
inline int64_t reply_recv(uint64_t h, Message& m) {
    return ipc(duet_abi::SysReplyRecv, h, m);
}
inline int64_t notification_create() {
    return syscall0(duet_abi::SysNotificationCreate);
}
inline int64_t signal(uint64_t h, uint64_t bits) {
    return syscall2(duet_abi::SysSignal, h, bits);
}
inline int64_t wait(uint64_t h) {
    return syscall1(duet_abi::SysWait, h);
}
inline int64_t handle_close(uint64_t h) {
    return syscall1(duet_abi::SysHandleClose, h);
}

// --- threads (docs/user-space.md, "Threads") ---

// What a thread runs: called with its stack's top (its Area) and start_thread's `arg`. The
// thread ends when it returns.
using ThreadMain = void (*)(uint64_t stack_top, uint64_t arg);

// Below a thread's scratch area: its function and argument, which its entry point reads.
inline constexpr uint64_t kThreadFrame = 1024 + 16;

#if defined(DUET_USER_HOST)
// The simulator's entry point for a thread (hal::enter_user calls it with RDI's value): the
// machine's is runtime/start.S's duet_thread_entry.
inline void thread_entry(uint64_t top) {
    uint64_t fn = load64(top - kThreadFrame);
    uint64_t arg = load64(top - kThreadFrame + 8);
    reinterpret_cast<ThreadMain>(fn)(top, arg);
}
#endif

// Starts a thread running fn(stack_top, arg) on the stack that ends at `stack_top` (mapped,
// writable, 16-byte aligned, at least a few KiB, and no live thread's: the frame is written
// into it first, refused or not): its number in the process, or minus the error
// (NoResources: duet_abi::kMaxThreads are live).
inline int64_t start_thread(ThreadMain fn, uint64_t stack_top, uint64_t arg) {
    uint64_t frame[2] = {reinterpret_cast<uint64_t>(fn), arg};
    store(stack_top - kThreadFrame, frame, sizeof frame);
#if defined(DUET_USER_HOST)
    uint64_t entry = reinterpret_cast<uint64_t>(&thread_entry);
#else
    uint64_t entry = reinterpret_cast<uint64_t>(&duet_thread_entry);
#endif
    uint64_t args[6] = {entry, stack_top - kThreadFrame, stack_top, 0, 0, 0};
    return syscall6(duet_abi::SysThreadStart, args);
}

// Ends the calling thread; the process ends when its last thread has.
[[noreturn]] inline void thread_exit() {
    syscall0(duet_abi::SysThreadExit);
    __builtin_unreachable();
}

} // namespace duet
