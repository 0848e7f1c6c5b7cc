// Reads kernel memory from user mode: the kernel must kill it with a report and go on.

#include <duet/syscall.hpp>

int main() {
    duet::log("reading kernel memory");
    // The kernel image (BOOTBOOT's fixed address): mapped, but not for user mode.
    uint64_t v = duet::load64(0xffff'ffff'ffe0'2000);
    duet::log("the read of kernel memory did not fault");
    return v == 0 ? 2 : 3;
}
