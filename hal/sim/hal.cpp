// The HAL contract, simulator side: each function forwards to the machine that is running.

#include <hal/cpu.hpp>
#include <hal/irq.hpp>
#include <hal/mmu.hpp>
#include <hal/serial.hpp>
#include <hal/stop.hpp>
#include <hal/time.hpp>
#include <hal_sim/com1.hpp>
#include <hal_sim/machine.hpp>

#include <cstdio>
#include <cstdlib>

namespace hal {

namespace {

hal_sim::Machine& machine() {
    hal_sim::Machine* m = hal_sim::Machine::current();
    if (m == nullptr) {
        // NOTE: core code called outside a running machine is a bug in a test or in the
        // simulator, not in the kernel; say so rather than crash somewhere else.
        std::fputs("duet: a HAL function was called outside a running simulated machine\n", stderr);
        std::abort();
    }
    return *m;
}

} // namespace

uint32_t cpu_index() {
    return machine().current_cpu().index;
}

uint32_t cpu_count() {
    return machine().cpu_count();
}

core::Cpu* this_cpu() {
    return machine().current_cpu().cpu_data;
}

void set_this_cpu(core::Cpu* cpu) {
    machine().current_cpu().cpu_data = cpu;
}

void cpu_relax() {
    machine().yield_to_executor();
}

void wait_for_interrupt() {
    machine().idle();
}

const char* machine_name() {
    return "sim";
}

IrqFlags irq_save() {
    auto& cpu = machine().current_cpu();
    IrqFlags was = cpu.irq_enabled ? 1 : 0;
    cpu.irq_enabled = false;
    return was;
}

void irq_restore(IrqFlags flags) {
    machine().current_cpu().irq_enabled = flags != 0;
}

bool irq_enabled() {
    return machine().current_cpu().irq_enabled;
}

uint64_t now_ns() {
    return machine().current_cpu().clock_ns;
}

void* phys_to_virt(PhysAddr pa) {
    return machine().ram().at(pa.value());
}

void serial_write(const char* data, size_t len) {
    if (hal_sim::Machine* m = hal_sim::Machine::current()) {
        m->com1().write(data, len);
    } else if (std::string* capture = hal_sim::SerialCapture::active()) {
        capture->append(data, len);
    } else {
        std::fwrite(data, 1, len, stderr);
    }
}

void halt_machine(ExitCode code) {
    machine().halt(code);
}

} // namespace hal
