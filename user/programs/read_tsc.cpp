// Reads the time-stamp counter in ring 3. The kernel sets CR4.TSD on every CPU, so RDTSC is a
// general-protection fault there, which must kill it: a program learns the time only from the
// kernel (sleep), which the simulator gives in virtual time (docs/user-space.md, *Bare metal*).
// NOTE: bare metal only: the simulator models a program's memory accesses and system calls,
// not its instructions, so no host build of this one is linked into it.

#include <duet/syscall.hpp>

int main() {
    duet::log("reading the time-stamp counter");
    uint32_t low;
    uint32_t high;
    asm volatile("rdtsc" : "=a"(low), "=d"(high));
    duet::log("rdtsc did not fault");
    return (low | high) == 0 ? 2 : 1;
}
