// The HAL contract, simulator side: each function forwards to the machine whose CPU is
// running (but hal::context_switch(), in contexts.cpp).

#include <hal/context.hpp>
#include <hal/cpu.hpp>
#include <hal/fault.hpp>
#include <hal/ipi.hpp>
#include <hal/irq.hpp>
#include <hal/mmu.hpp>
#include <hal/race.hpp>
#include <hal/serial.hpp>
#include <hal/stop.hpp>
#include <hal/time.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/race.hpp>

#include <cstdio>
#include <cstdlib>

namespace hal {

namespace {

hal_sim::Machine& machine() {
    hal_sim::Machine* m = hal_sim::Machine::current();
    if (m == nullptr) [[unlikely]] {
        // NOTE: core code called outside a running machine is a bug in a test or in the
        // simulator, not in the kernel; say so rather than crash somewhere else.
        std::fputs("duet: a HAL function was called outside a simulated CPU (tests: use "
                   "hal_sim::Machine::CpuScope)\n",
                   stderr);
        std::abort();
    }
    return *m;
}

} // namespace

// NOTE: race builds: each function is the simulator's code on the calling CPU's fiber
// (hal_sim::race::SimulatorCode). A fiber is only ever suspended inside one of them, where its
// scope is open, so every fiber's scopes stay balanced across the switches.

uint32_t cpu_count() {
    // BOOTBOOT's numcores, as on bare metal: the cores the firmware started (the BIOS loader
    // starts at most 255 of a machine's CPUs).
    return machine().boot_state().handover.numcores;
}

void cpu_relax() {
    hal_sim::race::SimulatorCode sim;
    machine().cpu_relax();
}

void cpu_work(uint64_t ns) {
    hal_sim::race::SimulatorCode sim;
    machine().cpu_work(ns);
}

void wait_for_interrupt() {
    hal_sim::race::SimulatorCode sim;
    machine().wait_for_interrupt();
}

void release_secondary_cpus() {
    hal_sim::race::SimulatorCode sim;
    machine().release_secondary_cpus();
}

void context_init(ArchContext& ctx, VirtAddr stack_base, size_t stack_size, ContextEntry entry,
                  void* arg, const char* name) {
    hal_sim::race::SimulatorCode sim;
    machine().context_init(ctx, stack_base.value(), stack_size, entry, arg, name);
}

void context_release(ArchContext& ctx) {
    hal_sim::race::SimulatorCode sim;
    machine().context_release(ctx);
}

const char* machine_name() {
    return "sim";
}

// NOTE: not simulator code: the kernel's own accesses, hidden from the race detector.
void racy_reads_begin() {
    hal_sim::race::ignore_begin();
}

void racy_reads_end() {
    hal_sim::race::ignore_end();
}

void timer_arm(uint64_t deadline_ns) {
    hal_sim::race::SimulatorCode sim;
    machine().timer_arm(deadline_ns);
}

void send_ipi(uint32_t cpu, IpiKind kind) {
    hal_sim::race::SimulatorCode sim;
    machine().send_ipi(cpu, kind);
}

bool inject_fault(FaultPoint point) {
    hal_sim::race::SimulatorCode sim;
    return machine().inject_fault(point);
}

void* phys_to_virt(PhysAddr pa) {
    return machine().ram().at(pa.value());
}

void serial_write(const char* data, size_t len) {
    hal_sim::race::SimulatorCode sim;
    machine().com1().write(data, len);
}

void halt_machine(ExitCode code) {
    hal_sim::race::SimulatorCode sim;
    machine().halt(code);
}

} // namespace hal
