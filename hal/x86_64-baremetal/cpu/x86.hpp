#pragma once

// Single x86_64 instructions as inline functions: port I/O, control registers, MSRs, CPUID.
// Shared by the kernel backend and the QEMU loader; nothing here touches memory.

#include <stdint.h>

namespace x86 {

inline constexpr uint64_t kRflagsIf = 1ull << 9;
inline constexpr uint64_t kRflagsAc = 1ull << 18;

inline constexpr uint64_t kCr0Pe = 1ull << 0;
inline constexpr uint64_t kCr0Mp = 1ull << 1;
inline constexpr uint64_t kCr0Em = 1ull << 2;
inline constexpr uint64_t kCr0Ne = 1ull << 5;
inline constexpr uint64_t kCr0Wp = 1ull << 16;
inline constexpr uint64_t kCr0Nw = 1ull << 29;
inline constexpr uint64_t kCr0Cd = 1ull << 30;
inline constexpr uint64_t kCr0Pg = 1ull << 31;

inline constexpr uint32_t kMsrApicBase = 0x1B;
inline constexpr uint32_t kMsrEfer = 0xC000'0080;
inline constexpr uint64_t kEferNxe = 1ull << 11;
inline constexpr uint64_t kEferSce = 1ull << 0; // SYSCALL/SYSRET
inline constexpr uint32_t kMsrStar = 0xC000'0081;
inline constexpr uint32_t kMsrLstar = 0xC000'0082;
inline constexpr uint32_t kMsrFmask = 0xC000'0084;
inline constexpr uint32_t kMsrKernelGsBase = 0xC000'0102;
inline constexpr uint64_t kCr4Tsd = 1ull << 2;
inline constexpr uint64_t kCr4De = 1ull << 3;
inline constexpr uint64_t kCr4Pae = 1ull << 5;
inline constexpr uint64_t kCr4Mce = 1ull << 6;
inline constexpr uint64_t kCr4Pce = 1ull << 8;
inline constexpr uint64_t kCr4Osfxsr = 1ull << 9;
inline constexpr uint64_t kCr4Osxmmexcpt = 1ull << 10;
inline constexpr uint64_t kCr4Umip = 1ull << 11;
inline constexpr uint64_t kCr4La57 = 1ull << 12;
inline constexpr uint64_t kCr4Smep = 1ull << 20;
inline constexpr uint64_t kCr4Smap = 1ull << 21;

inline void outb(uint16_t port, uint8_t value) {
    asm volatile("outb %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

inline uint8_t inb(uint16_t port) {
    uint8_t value;
    asm volatile("inb %1, %0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}

inline void outw(uint16_t port, uint16_t value) {
    asm volatile("outw %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

inline uint16_t inw(uint16_t port) {
    uint16_t value;
    asm volatile("inw %1, %0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}

inline void outl(uint16_t port, uint32_t value) {
    asm volatile("outl %0, %1" : : "a"(value), "Nd"(port) : "memory");
}

inline uint32_t inl(uint16_t port) {
    uint32_t value;
    asm volatile("inl %1, %0" : "=a"(value) : "Nd"(port) : "memory");
    return value;
}

inline uint64_t read_cr0() {
    uint64_t value;
    asm volatile("mov %%cr0, %0" : "=r"(value));
    return value;
}

inline void write_cr0(uint64_t value) {
    asm volatile("mov %0, %%cr0" : : "r"(value) : "memory");
}

inline uint64_t read_cr2() {
    uint64_t value;
    asm volatile("mov %%cr2, %0" : "=r"(value));
    return value;
}

inline uint64_t read_cr3() {
    uint64_t value;
    asm volatile("mov %%cr3, %0" : "=r"(value));
    return value;
}

inline void write_cr3(uint64_t value) {
    asm volatile("mov %0, %%cr3" : : "r"(value) : "memory");
}

inline uint64_t read_cr4() {
    uint64_t value;
    asm volatile("mov %%cr4, %0" : "=r"(value));
    return value;
}

inline void write_cr4(uint64_t value) {
    asm volatile("mov %0, %%cr4" : : "r"(value) : "memory");
}

inline uint64_t rdmsr(uint32_t msr) {
    uint32_t lo;
    uint32_t hi;
    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (uint64_t{hi} << 32) | lo;
}

inline void wrmsr(uint32_t msr, uint64_t value) {
    asm volatile("wrmsr"
                 :
                 : "c"(msr), "a"(static_cast<uint32_t>(value)),
                   "d"(static_cast<uint32_t>(value >> 32))
                 : "memory");
}

struct CpuidResult {
    uint32_t eax;
    uint32_t ebx;
    uint32_t ecx;
    uint32_t edx;
};

inline CpuidResult cpuid(uint32_t leaf, uint32_t subleaf = 0) {
    CpuidResult r;
    asm volatile("cpuid"
                 : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx)
                 : "a"(leaf), "c"(subleaf));
    return r;
}

// The time-stamp counter. Not serialising: callers that bracket an event read it on both sides.
inline uint64_t rdtsc() {
    uint32_t lo;
    uint32_t hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t{hi} << 32) | lo;
}

inline uint64_t read_rflags() {
    uint64_t flags;
    asm volatile("pushfq; popq %0" : "=r"(flags) : : "memory");
    return flags;
}

// Stops this CPU for good: interrupts off, then HLT in a loop (an NMI or SMI only wakes it
// for another round).
[[noreturn]] inline void halt_forever() {
    for (;;) {
        asm volatile("cli; hlt" : : : "memory");
    }
}

} // namespace x86
