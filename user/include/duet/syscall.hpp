#pragma once

// The user runtime's system calls: one inline SYSCALL each, with the kernel's ABI
// (core/include/core/user/abi.hpp: number in RAX, arguments in RDI, RSI, RDX, R10, R8, R9,
// result in RAX, RCX and R11 clobbered).

#include <core/user/abi.hpp>

#include <stddef.h>
#include <stdint.h>

namespace duet {

inline int64_t syscall0(uint64_t number) {
    int64_t r;
    asm volatile("syscall" : "=a"(r) : "a"(number) : "rcx", "r11", "memory");
    return r;
}

inline int64_t syscall1(uint64_t number, uint64_t a0) {
    int64_t r;
    asm volatile("syscall" : "=a"(r) : "a"(number), "D"(a0) : "rcx", "r11", "memory");
    return r;
}

inline int64_t syscall2(uint64_t number, uint64_t a0, uint64_t a1) {
    int64_t r;
    asm volatile("syscall" : "=a"(r) : "a"(number), "D"(a0), "S"(a1) : "rcx", "r11", "memory");
    return r;
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

inline int64_t log(const char* text) {
    return log_write(reinterpret_cast<uint64_t>(text), length(text));
}

} // namespace duet
