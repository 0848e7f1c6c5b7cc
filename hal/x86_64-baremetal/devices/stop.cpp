// Ending the run through QEMU's isa-debug-exit device; without it, every CPU halts.

#include "devices/stop.hpp"

#include "cpu/percpu.hpp"
#include "cpu/x86.hpp"
#include "devices/debug_exit.hpp"
#include "devices/lapic.hpp"
#include "devices/uart16550.hpp"

#include <hal/cpu.hpp>
#include <hal/stop.hpp>

namespace {

bool s_stopping = false;

// Sends an NMI to every other CPU whose IDT is loaded, which halts it (x86_exception sees
// stopping()); a CPU that loads its IDT later sees stopping() itself (x86_interrupts::load_idt).
void stop_other_cpus() {
    __atomic_store_n(&s_stopping, true, __ATOMIC_SEQ_CST);
    if (!lapic::ready()) {
        return;
    }
    uint32_t self = hal::cpu_index();
    uint32_t n = hal::cpu_count();
    for (uint32_t i = 0; i < n && i < bootboot_abi::kMaxCores; ++i) {
        x86_percpu::Block& b = x86_percpu::block(i);
        if (i != self && __atomic_load_n(&b.interrupts_ready, __ATOMIC_SEQ_CST)) {
            lapic::send_nmi(b.apic_id);
        }
    }
}

} // namespace

namespace x86_stop {

bool stopping() {
    return __atomic_load_n(&s_stopping, __ATOMIC_SEQ_CST);
}

} // namespace x86_stop

namespace hal {

void halt_machine(ExitCode code) {
    asm volatile("cli" : : : "memory");
    // The verdict line must reach the log before QEMU goes away.
    uart16550::drain();
    debug_exit::write(debug_exit::kVerdictBase | static_cast<uint8_t>(code));
    // Still here: no debug-exit device (real hardware). Stop the others, then this CPU.
    stop_other_cpus();
    x86::halt_forever();
}

} // namespace hal
