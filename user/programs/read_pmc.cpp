// Reads performance counter 0 in ring 3. Both BOOTBOOT loaders hand over with CR4.PCE set,
// which lets ring 3 execute RDPMC; the kernel clears it on every CPU, so RDPMC is a
// general-protection fault there, which must kill it. (QEMU's TCG implements no counters: with
// PCE set, RDPMC in ring 3 is an invalid opcode there instead, exception 6.)
// NOTE: bare metal only: no host build (the simulator does not model instructions).

#include <duet/syscall.hpp>

int main() {
    duet::log("reading performance counter 0");
    uint32_t low;
    uint32_t high;
    asm volatile("rdpmc" : "=a"(low), "=d"(high) : "c"(0));
    duet::log("rdpmc did not fault");
    return (low | high) == 0 ? 2 : 1;
}
