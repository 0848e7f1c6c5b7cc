// Executes a privileged instruction in ring 3: a general-protection fault, which must kill it.
// NOTE: bare metal only: the simulator models a program's memory accesses and system calls,
// not its instructions, so no host build of this one is linked into it.

#include <duet/syscall.hpp>

int main() {
    duet::log("turning interrupts off from user mode");
    asm volatile("cli");
    duet::log("cli did not fault");
    return 1;
}
