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

#if defined(DUET_USER_HOST)
extern "C" {
// hal/sim/user.cpp. A fault in a user access kills the process (it does not return).
int64_t duet_sim_syscall(uint64_t number, uint64_t a0, uint64_t a1);
void duet_sim_user_store(uint64_t va, const void* src, uint64_t bytes);
uint64_t duet_sim_user_load64(uint64_t va);
}
#endif

namespace duet {

// Where log() puts its text: the top of the stack (the program's frames start below it).
inline constexpr uint64_t kScratch = duet_abi::kStackTop - 256;

#if defined(DUET_USER_HOST)
inline int64_t syscall2(uint64_t number, uint64_t a0, uint64_t a1) {
    return duet_sim_syscall(number, a0, a1);
}
inline void store(uint64_t va, const void* src, uint64_t bytes) {
    duet_sim_user_store(va, src, bytes);
}
inline uint64_t load64(uint64_t va) {
    return duet_sim_user_load64(va);
}
#else
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
#endif

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

// Logs `text` (at most duet_abi::kMaxLogBytes bytes) from the scratch area of the stack.
inline int64_t log(const char* text) {
    size_t n = length(text);
    if (n > duet_abi::kMaxLogBytes) {
        n = duet_abi::kMaxLogBytes;
    }
    store(kScratch, text, n);
    return log_write(kScratch, n);
}

} // namespace duet
