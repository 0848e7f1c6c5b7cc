// Reads the IDT register in ring 3 (SIDT), which tells where the kernel's IDT is. Where the CPU
// has UMIP (QEMU -cpu max) the kernel sets CR4.UMIP on every CPU and SIDT is a
// general-protection fault, which must kill it; without UMIP (QEMU's default CPU) SIDT works
// in ring 3 and it says so and exits 0.
// NOTE: bare metal only: no host build (the simulator does not model instructions).

#include <duet/syscall.hpp>

int main() {
    duet::log("reading the IDT register");
    struct [[gnu::packed]] {
        uint16_t limit;
        uint64_t base;
    } idtr{};
    asm volatile("sidt %0" : "=m"(idtr));
    duet::log("SIDT worked: this CPU has no UMIP");
    return idtr.limit == 0 ? 1 : 0;
}
