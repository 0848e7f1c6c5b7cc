// CPU identity, per-CPU data and idling.

#include "boot/bootboot_symbols.hpp"
#include "cpu/percpu.hpp"
#include "cpu/x86.hpp"

#include <core/lib/compiler.hpp>
#include <hal/cpu.hpp>

namespace x86_percpu {

namespace {
Block s_blocks[bootboot_abi::kMaxCores];
}

BOOT_CODE void install(uint32_t index, uint32_t apic_id) {
    Block& b = s_blocks[index];
    b.cpu = nullptr;
    b.index = index;
    b.apic_id = apic_id;
    x86::wrmsr(kMsrGsBase, reinterpret_cast<uint64_t>(&b));
    // Other CPUs read apic_id (hal::send_ipi) once they see `present`.
    __atomic_store_n(&b.present, true, __ATOMIC_RELEASE);
}

Block& block(uint32_t index) {
    return s_blocks[index];
}

Block& this_block() {
    return s_blocks[hal::cpu_index()];
}

} // namespace x86_percpu

namespace hal {

uint32_t cpu_count() {
    return bootboot.header.numcores;
}

void set_this_cpu(core::Cpu* cpu) {
    asm volatile("movq %0, %%gs:%c1" : : "r"(cpu), "i"(x86_percpu::kCpuOffset) : "memory");
}

void cpu_relax() {
    asm volatile("pause" : : : "memory");
}

void wait_for_interrupt() {
    uint64_t flags = x86::read_rflags();
    // NOTE: STI takes effect after the next instruction, so an interrupt that arrives between
    // the two is still delivered by waking HLT, never lost before it.
    asm volatile("sti; hlt" : : : "memory");
    if ((flags & x86::kRflagsIf) == 0) {
        asm volatile("cli" : : : "memory");
    }
}

const char* machine_name() {
    return "x86_64-baremetal";
}

// No race detector on bare metal (hal/race.hpp).
void racy_reads_begin() {}
void racy_reads_end() {}

} // namespace hal
