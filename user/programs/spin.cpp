// Computes in ring 3 for a while without a system call, so that timer interrupts (and the
// wake-ups of the other programs) arrive while the CPU is in user mode.
// NOTE: bare metal only (initrd-user.tar): host code in the simulator reaches no preemption
// point between system calls, so there the loop would just run to its end.

#include <duet/syscall.hpp>

int main() {
    constexpr uint64_t kIterations = 50'000'000;
    volatile uint64_t counter = 0;
    for (uint64_t i = 0; i < kIterations; ++i) {
        counter = counter + 1;
    }
    if (counter != kIterations) {
        duet::log("the counter lost increments");
        return 1;
    }
    duet::log("counted to 50000000 in user mode");
    return 0;
}
