// Computes in ring 3 with RFLAGS.AC set (POPF may set it at any privilege level; with CR0.AM
// clear it changes nothing for the program), long enough for timer interrupts to arrive there.
// An interrupt gate does not clear AC, so a handler entered from here would run with SMAP off
// unless the entry clears it (CLAC); the kernel stops the machine if a handler ever runs with
// AC set on a CPU with SMAP on (docs/user-space.md, *Bare metal*).
// NOTE: bare metal only: no host build (AC would turn on alignment checks in a host process).

#include <duet/syscall.hpp>

int main() {
    constexpr uint64_t kAc = uint64_t{1} << 18;
    constexpr uint64_t kIterations = 20'000'000;
    uint64_t flags;
    asm volatile("pushfq\n\t"
                 "orq %1, (%%rsp)\n\t"
                 "popfq\n\t"
                 "pushfq\n\t"
                 "popq %0"
                 : "=r"(flags)
                 : "r"(kAc)
                 : "cc", "memory");
    volatile uint64_t counter = 0;
    for (uint64_t i = 0; i < kIterations; ++i) {
        counter = counter + 1;
    }
    uint64_t after;
    asm volatile("pushfq\n\t"
                 "popq %0"
                 : "=r"(after)
                 :
                 : "memory");
    if ((flags & kAc) == 0 || (after & kAc) == 0) {
        duet::log("RFLAGS.AC did not stay set");
        return 1;
    }
    if (counter != kIterations) {
        duet::log("the counter lost increments");
        return 1;
    }
    duet::log("counted to 20000000 in user mode with RFLAGS.AC set");
    return 0;
}
