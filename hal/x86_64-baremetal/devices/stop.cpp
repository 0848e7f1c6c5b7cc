// Ending the run through QEMU's isa-debug-exit device.

#include "cpu/x86.hpp"
#include "devices/debug_exit.hpp"
#include "devices/uart16550.hpp"

#include <hal/stop.hpp>

namespace hal {

void halt_machine(ExitCode code) {
    asm volatile("cli" : : : "memory");
    // The verdict line must reach the log before QEMU goes away.
    uart16550::drain();
    debug_exit::write(debug_exit::kVerdictBase | static_cast<uint8_t>(code));
    // FIXME: other CPUs keep running until SMP bring-up can send them IpiKind::Halt.
    x86::halt_forever();
}

} // namespace hal
